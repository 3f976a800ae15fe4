// The sources of a document answer: one list, numbered like the answer's [n] chips (the n-th
// passage the answer was given), cited documents first; a chip scrolls to and highlights its source.

import { el, plural } from "./dom.js";

const SNIPPET_CHARS = 180;
const SERVER_SNIPPET_CHARS = 240; // the agent cuts passages here, possibly mid-word
const CITE = /\[(\d+)\]/g;

/** A passage as a line of prose: markdown headings dropped (the title says it), spaces folded. */
export function readableSnippet(raw) {
  const lines = String(raw || "").split("\n");
  const prose = lines.filter((line) => !/^\s*#/.test(line)).join(" ").replace(/\s+/g, " ").trim();
  return prose || lines.join(" ").replace(/^[\s#]+/, "").replace(/\s+/g, " ").trim();
}

/** `text` cut at a word boundary to at most `max` characters, with an ellipsis when cut. */
export function cutAtWord(text, max = SNIPPET_CHARS, alreadyCut = false) {
  if (text.length <= max && !alreadyCut) return text;
  const head = text.slice(0, max);
  const space = head.lastIndexOf(" ");
  const cut = (space > max * 0.6 ? head.slice(0, space) : head).replace(/[\s,;:.–—-]+$/, "");
  return `${cut}…`;
}

/** The passage numbers an answer cites, in the order it first cites them. */
export function citedNumbers(answerText) {
  const seen = [];
  for (const match of String(answerText).matchAll(CITE)) {
    const n = Number(match[1]);
    if (!seen.includes(n)) seen.push(n);
  }
  return seen;
}

/**
 * One entry per document: `{key, title, numbers, snippet, cited}`; the cited ones first (in the
 * order of their first chip), then the documents searched but not cited.
 */
export function sourceEntries(sources, answerText) {
  const byDoc = new Map();
  sources.forEach((source, index) => {
    const key = source.doc_id || source.title || `#${index}`;
    if (!byDoc.has(key)) byDoc.set(key, { key, title: source.title || source.doc_id || "Untitled", numbers: [], passages: [] });
    const entry = byDoc.get(key);
    entry.passages.push({ n: index + 1, snippet: source.snippet });
  });
  const cited = citedNumbers(answerText);
  const entries = [...byDoc.values()].map((entry) => {
    const numbers = entry.passages.map((p) => p.n).filter((n) => cited.includes(n));
    const first = entry.passages.find((p) => numbers.includes(p.n)) || entry.passages[0];
    const raw = String(first.snippet || "");
    const snippet = cutAtWord(readableSnippet(raw), SNIPPET_CHARS, raw.length >= SERVER_SNIPPET_CHARS);
    return { key: entry.key, title: entry.title, numbers, snippet, cited: numbers.length > 0 };
  });
  const rank = (entry) => (entry.cited ? cited.indexOf(entry.numbers[0]) : cited.length + 1);
  return entries
    .map((entry, index) => ({ entry, index }))
    .sort((a, b) => rank(a.entry) - rank(b.entry) || a.index - b.index)
    .map(({ entry }) => entry);
}

/** The sources block of an answer whose text is `answerText`. */
export function sourcesBlock(sources, answerText) {
  const entries = sourceEntries(sources, answerText);
  const list = el("ol", { class: "source-list" });
  for (const entry of entries) {
    const badges = el("span", { class: "source-numbers" },
      ...(entry.numbers.length ? entry.numbers : ["·"]).map((n) =>
        el("span", { class: typeof n === "number" ? "cite" : "cite none", text: typeof n === "number" ? `[${n}]` : n })));
    list.append(
      el(
        "li",
        {
          class: `source${entry.cited ? "" : " uncited"}`,
          attrs: { "data-cites": entry.numbers.join(" ") || null },
        },
        badges,
        el("span", { class: "source-text" },
          el("span", { class: "source-title", text: entry.title }),
          entry.cited ? null : el("span", { class: "source-note", text: "searched, not cited" }),
          entry.snippet ? el("span", { class: "source-snippet", text: entry.snippet }) : null),
      ),
    );
  }
  const citedCount = entries.filter((e) => e.cited).length;
  const heading = citedCount === entries.length
    ? `Sources (${entries.length})`
    : `Sources (${citedCount} cited of ${plural(entries.length, "document")})`;
  return el("div", { class: "sources" }, el("h3", { class: "sources-title", text: heading }), list);
}

/** Make the `[n]` chips of `answer` buttons that scroll to and highlight their source. */
export function linkCitations(answer, block) {
  for (const chip of answer.querySelectorAll(".cite")) {
    const n = Number(/\d+/.exec(chip.textContent)?.[0]);
    const target = [...block.querySelectorAll(".source")].find((item) =>
      (item.dataset.cites || "").split(" ").includes(String(n)));
    if (!target) continue;
    chip.classList.add("linked");
    chip.setAttribute("role", "button");
    chip.setAttribute("tabindex", "0");
    chip.setAttribute("title", `Source ${n}: ${target.querySelector(".source-title").textContent}`);
    const go = () => {
      target.scrollIntoView({ block: "nearest", behavior: "smooth" });
      for (const other of block.querySelectorAll(".source.highlight")) other.classList.remove("highlight");
      target.classList.add("highlight");
      setTimeout(() => target.classList.remove("highlight"), 2000);
    };
    chip.addEventListener("click", go);
    chip.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        go();
      }
    });
  }
}
