// The rows of a data answer: a compact sortable table (numbers right-aligned, the first rows with
// "show all") and, when the rows are a series over time or a breakdown, a small chart.

import { chartFor } from "./chart.js";
import { el, plural } from "./dom.js";

export const FIRST_ROWS = 8;

const NUMBER = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

/** A cell as text: numbers grouped by the reader's locale, empty for null. */
export function cellText(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") return NUMBER.format(value);
  if (typeof value === "boolean") return value ? "yes" : "no";
  return String(value);
}

/** The columns whose every non-empty value is a number. */
export function numericColumns(table) {
  return table.columns.map((_, i) => {
    const values = table.rows.map((row) => row[i]).filter((v) => v !== null && v !== undefined);
    return values.length > 0 && values.every((v) => typeof v === "number");
  });
}

function compare(a, b) {
  if (a === b) return 0;
  if (a === null || a === undefined) return 1; // empty cells last either way
  if (b === null || b === undefined) return -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

/** The table block: `{columns, rows, row_count, capped}` as the tool sent it. */
export function resultBlock(table) {
  if (!table || !Array.isArray(table.columns) || !Array.isArray(table.rows) || table.rows.length === 0) return null;
  const numeric = numericColumns(table);
  const state = { column: -1, descending: false, all: table.rows.length <= FIRST_ROWS };
  const head = el("tr");
  const body = el("tbody");
  const more = el("button", { class: "link-button show-all", attrs: { type: "button" } });
  const headers = table.columns.map((name, i) => {
    const button = el("button", { class: "sort", text: name, attrs: { type: "button", title: `Sort by ${name}` } });
    const th = el("th", { class: numeric[i] ? "num" : null, attrs: { scope: "col", "aria-sort": "none" } }, button);
    button.addEventListener("click", () => {
      state.descending = state.column === i ? !state.descending : numeric[i];
      state.column = i;
      draw();
    });
    head.append(th);
    return th;
  });

  function draw() {
    const rows = table.rows.map((row, index) => ({ row, index }));
    if (state.column >= 0) {
      const sign = state.descending ? -1 : 1;
      rows.sort((a, b) => sign * compare(a.row[state.column], b.row[state.column]) || a.index - b.index);
    }
    const shown = state.all ? rows : rows.slice(0, FIRST_ROWS);
    body.replaceChildren(
      ...shown.map(({ row }) =>
        el("tr", {}, ...table.columns.map((_, i) =>
          el("td", { class: numeric[i] ? "num" : null, text: cellText(row[i]) })))),
    );
    headers.forEach((th, i) => {
      const sort = i === state.column ? (state.descending ? "descending" : "ascending") : "none";
      th.setAttribute("aria-sort", sort);
    });
    more.hidden = state.all;
    more.textContent = `Show all ${plural(table.rows.length, "row")}`;
  }
  more.addEventListener("click", () => {
    state.all = true;
    draw();
  });
  draw();

  const count = typeof table.row_count === "number" ? table.row_count : table.rows.length;
  const caption = table.capped
    ? `First ${table.rows.length} of ${plural(count, "row")}`
    : plural(count, "row");
  const chart = chartFor(table, numeric);
  return el(
    "div",
    { class: "result" },
    chart,
    el("div", { class: "table-scroll" },
      el("table", { class: "result-table" },
        el("caption", { class: "visually-hidden", text: `Result: ${caption}` }),
        el("thead", {}, head),
        body)),
    el("div", { class: "result-foot" }, el("span", { class: "result-count", text: caption }), more),
  );
}
