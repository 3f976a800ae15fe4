// A small chart of a result, drawn as SVG here (no library, no network): a line for a series over
// time, bars for a breakdown by category. Labels are text nodes, never markup.

const SVG = "http://www.w3.org/2000/svg";
const MAX_POINTS = 24;
const DATE_LIKE = /^\d{4}-\d{2}(-\d{2})?([ T].*)?$/;
const TIME_NAME = /(^|_)(date|day|week|month|year|quarter|period)s?($|_)|_(on|at)$/i;
const ID_NAME = /(^|_)id$/i;

function svg(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== null) node.textContent = String(text);
  return node;
}

/**
 * What to draw for `table`, or null: `{kind: "line"|"bar", label, value}` (column indexes). A
 * series: a date-like (or date-named) label column and a number, in time order. A breakdown: a
 * text label column and a number, 2 to 24 rows. Id columns are never the value.
 */
export function chartPlan(table, numeric) {
  const rows = table.rows;
  if (rows.length < 2 || rows.length > MAX_POINTS) return null;
  let value = -1;
  table.columns.forEach((name, i) => {
    if (numeric[i] && !ID_NAME.test(name)) value = i;
  });
  if (value < 0) return null;
  const label = table.columns.findIndex((name, i) => !numeric[i] && rows.every((r) => r[i] !== null));
  const timeLabel = table.columns.findIndex((name, i) =>
    i !== value && (rows.every((r) => DATE_LIKE.test(String(r[i]))) || (TIME_NAME.test(name) && !ID_NAME.test(name))));
  if (timeLabel >= 0 && rows.length >= 3) return { kind: "line", label: timeLabel, value };
  if (label >= 0) return { kind: "bar", label, value };
  return null;
}

function short(text, max = 18) {
  const s = String(text);
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

function barChart(table, { label, value }, format) {
  const rows = table.rows.slice(0, MAX_POINTS);
  const max = Math.max(...rows.map((r) => r[value] || 0), 0) || 1;
  const rowH = 22;
  const width = 560;
  const labelW = 150;
  const valueW = 70;
  const height = rows.length * rowH;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart bar-chart", role: "img" });
  rows.forEach((row, i) => {
    const y = i * rowH;
    const w = Math.max(1, ((row[value] || 0) / max) * (width - labelW - valueW));
    const name = svg("text", { x: labelW - 8, y: y + 15, class: "chart-label", "text-anchor": "end" }, short(row[label]));
    name.append(svg("title", {}, String(row[label])));
    root.append(
      name,
      svg("rect", { x: labelW, y: y + 4, width: w.toFixed(1), height: rowH - 8, rx: 3, class: "chart-bar" }),
      svg("text", { x: labelW + w + 6, y: y + 15, class: "chart-value" }, format(row[value])),
    );
  });
  return root;
}

function lineChart(table, { label, value }, format) {
  const rows = table.rows.slice(0, MAX_POINTS);
  const width = 560;
  const height = 160;
  const pad = { left: 56, right: 12, top: 12, bottom: 26 };
  const values = rows.map((r) => r[value] || 0);
  const max = Math.max(...values, 0) || 1;
  const min = Math.min(...values, 0);
  const x = (i) => pad.left + (i * (width - pad.left - pad.right)) / Math.max(1, rows.length - 1);
  const y = (v) => pad.top + (1 - (v - min) / (max - min || 1)) * (height - pad.top - pad.bottom);
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart line-chart", role: "img" });
  root.append(
    svg("line", { x1: pad.left, x2: width - pad.right, y1: y(min), y2: y(min), class: "chart-axis" }),
    svg("text", { x: pad.left - 6, y: y(max) + 4, class: "chart-value", "text-anchor": "end" }, format(max)),
    svg("text", { x: pad.left - 6, y: y(min) + 4, class: "chart-value", "text-anchor": "end" }, format(min)),
    svg("polyline", { points: values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" "), class: "chart-line" }),
  );
  values.forEach((v, i) => {
    const dot = svg("circle", { cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 3, class: "chart-dot" });
    dot.append(svg("title", {}, `${rows[i][label]}: ${format(v)}`));
    root.append(dot);
  });
  const ticks = rows.length <= 6 ? rows.map((_, i) => i) : [0, Math.floor((rows.length - 1) / 2), rows.length - 1];
  for (const i of ticks) {
    // the end ticks align to the plot's edges so their labels stay inside the drawing
    const anchor = i === 0 ? "start" : i === rows.length - 1 ? "end" : "middle";
    const at = i === 0 ? x(i) - 4 : i === rows.length - 1 ? x(i) + 4 : x(i);
    root.append(svg("text", { x: at, y: height - 8, class: "chart-label", "text-anchor": anchor }, short(rows[i][label], 12)));
  }
  return root;
}

/** The chart of `table` (a `<figure>`), or null when its rows are neither a series nor a breakdown. */
export function chartFor(table, numeric) {
  const plan = chartPlan(table, numeric);
  if (!plan) return null;
  const format = (v) => new Intl.NumberFormat(undefined, { maximumFractionDigits: 1, notation: Math.abs(v) >= 1e5 ? "compact" : "standard" }).format(v);
  const drawing = plan.kind === "line" ? lineChart(table, plan, format) : barChart(table, plan, format);
  const what = `${table.columns[plan.value]} by ${table.columns[plan.label]}`;
  drawing.setAttribute("aria-label", `${plan.kind === "line" ? "Line" : "Bar"} chart of ${what}`);
  const figure = document.createElement("figure");
  figure.className = `chart-figure ${plan.kind}`;
  figure.dataset.chart = plan.kind;
  const caption = document.createElement("figcaption");
  caption.className = "chart-caption";
  caption.textContent = what;
  figure.append(caption, drawing);
  return figure;
}
