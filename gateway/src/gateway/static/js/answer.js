// An answer's text as lines: bullets, numbered items, gaps, the "Sources:" line and [n] chips.

import { el } from "./dom.js";

const BULLET = /^(\s*[-•*]\s)/;
const NUMBERED = /^\s*\d+[.)]\s/;
const CITATION = /(\[\d+\])/;

/**
 * Fill one line element from its text: bullets, numbered items, blank lines and `Sources:` get a
 * class; `[n]` citations a span. Every character of `text` stays in the line's text (the bullet
 * marker is hidden by CSS, not removed), so the answer's text is exactly what was streamed.
 */
function formatLine(node, text) {
  let kind = "text";
  let rest = text;
  const parts = [];
  const bullet = BULLET.exec(text);
  if (bullet) {
    kind = "bullet";
    parts.push(el("span", { class: "marker", text: bullet[1], attrs: { "aria-hidden": "true" } }));
    rest = text.slice(bullet[1].length);
  } else if (NUMBERED.test(text)) {
    kind = "numbered";
  } else if (text.trim() === "") {
    kind = "gap";
  } else if (text.startsWith("Sources: ")) {
    kind = "sources-line";
  }
  for (const piece of rest.split(CITATION)) {
    if (!piece) continue;
    parts.push(CITATION.test(piece) ? el("span", { class: "cite", text: piece }) : piece);
  }
  node.className = `line ${kind}`;
  node.replaceChildren(...parts);
}

/** Writes an answer into `container` line by line as its text arrives. */
export class AnswerWriter {
  constructor(container) {
    this.container = container;
    this.text = "";
    this.line = null;
    this.lineText = "";
  }

  append(chunk) {
    if (!chunk) return;
    this.text += chunk;
    const pieces = chunk.split("\n");
    pieces.forEach((piece, index) => {
      if (index > 0) {
        this.render();
        this.line = null;
        this.lineText = "";
      }
      this.lineText += piece;
    });
    this.render();
  }

  render() {
    if (!this.line) {
      this.line = el("div");
      this.container.append(this.line);
    }
    // Only the last line changes while streaming: re-forming it costs O(line), not O(answer).
    formatLine(this.line, this.lineText);
  }
}
