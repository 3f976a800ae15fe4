// The transcript: user messages and assistant turns, live (from UI events) or from history.
// Every piece of text from the server goes in with textContent (see dom.js).

import { el, formatDuration, show } from "./dom.js";

const ROUTE_LABELS = {
  sql: "Answered from your company's data",
  rag: "Answered from your documents",
  general: "General answer",
};

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
class AnswerWriter {
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

/** A user's message bubble. */
export function userMessage(text) {
  return el("li", { class: "message user" }, el("div", { class: "bubble", text }));
}

function sqlDetails(sql, rowCount, truncated) {
  let summary = "Show SQL";
  if (typeof rowCount === "number") summary += ` · ${rowCount} ${rowCount === 1 ? "row" : "rows"}`;
  if (truncated) summary += " (truncated)";
  return el(
    "details",
    { class: "sql" },
    el("summary", { text: summary }),
    el("pre", {}, el("code", { text: sql })),
  );
}

/** A passage as a line of prose: markdown headings dropped (the title says it), spaces folded. */
function readableSnippet(raw) {
  const lines = String(raw || "").split("\n");
  const prose = lines.filter((line) => !/^\s*#/.test(line)).join(" ").replace(/\s+/g, " ").trim();
  return prose || lines.join(" ").replace(/^[\s#]+/, "").replace(/\s+/g, " ").trim();
}

function sourcesBlock(sources) {
  const list = el("ol", { class: "source-list" });
  const seen = new Set();
  for (const source of sources) {
    // Several passages of one document: list the document once, with its best passage.
    const key = source.doc_id || source.title;
    if (seen.has(key)) continue;
    seen.add(key);
    const snippet = readableSnippet(source.snippet);
    list.append(
      el(
        "li",
        { class: "source" },
        el("span", { class: "source-title", text: source.title || source.doc_id || "Untitled" }),
        snippet ? el("span", { class: "source-snippet", text: snippet }) : null,
      ),
    );
  }
  const count = list.childElementCount;
  return el(
    "div",
    { class: "sources" },
    el("h3", { class: "sources-title", text: `Sources (${count})` }),
    list,
  );
}

function routeChip(route, label, title) {
  return el("span", {
    class: `route-chip route-${route || "general"}`,
    text: label || ROUTE_LABELS[route] || "Answer",
    attrs: { title },
  });
}

/** An assistant answer from the history API: `{content, route, sql, sources}`. */
export function historyAnswer(message) {
  const body = el("div", { class: "turn-body" });
  if (message.route) body.append(el("div", { class: "turn-meta" }, routeChip(message.route)));
  const answer = el("div", { class: "answer" });
  new AnswerWriter(answer).append(message.content || "");
  body.append(answer);
  if (message.sql) body.append(sqlDetails(message.sql));
  if (Array.isArray(message.sources) && message.sources.length) body.append(sourcesBlock(message.sources));
  return el("li", { class: "message assistant" }, body);
}

/**
 * One live assistant turn, fed with UI events by `handle(event)`. `onEnd(outcome)` is called once
 * with "complete", "stopped", "error" or "lost"; `retry()` asks the same question again.
 */
export class AssistantTurn {
  constructor({ onEnd, retry }) {
    this.onEnd = onEnd;
    this.retry = retry;
    this.ended = false;
    this.started = false; // a `start` arrived: the server is running this turn
    this.busyRetries = 0;
    this.retryTimer = null;
    this.stopRequested = false;
    this.tools = new Map();
    this.notes = new Map();
    this.countdown = null;

    this.meta = el("div", { class: "turn-meta" });
    this.status = el("div", { class: "turn-status", attrs: { role: "status", "aria-live": "polite" } },
      el("span", { class: "pulse", attrs: { "aria-hidden": "true" } }),
      el("span", { class: "status-text", text: "Sending…" }));
    this.activity = el("ul", { class: "activity" });
    this.answer = el("div", { class: "answer streaming", attrs: { "aria-busy": "true" } });
    this.writer = new AnswerWriter(this.answer);
    this.extras = el("div", { class: "turn-extras" });
    this.footer = el("div", { class: "turn-footer" });
    show(this.activity, false);
    this.element = el(
      "li",
      { class: "message assistant live" },
      el("div", { class: "turn-body" }, this.meta, this.activity, this.status, this.answer, this.extras, this.footer),
    );
  }

  setStatus(text) {
    this.status.querySelector(".status-text").textContent = text;
  }

  handle(event) {
    if (this.ended) return;
    switch (event.type) {
      case "start":
        this.started = true;
        this.setStatus("Starting…");
        break;
      case "progress":
        this.setStatus(event.message || "Working…");
        this.status.dataset.step = event.step || "";
        break;
      case "route":
        this.meta.replaceChildren(
          routeChip(event.route, event.label, `${event.reason || ""} (confidence ${Math.round((event.confidence || 0) * 100)}%)`),
        );
        break;
      case "reasoning":
        this.note(event.channel, event.token);
        break;
      case "tool_start":
        this.toolStarted(event);
        break;
      case "tool_end":
        this.toolEnded(event);
        break;
      case "token":
        this.writer.append(event.token || "");
        break;
      case "sources":
        if (Array.isArray(event.sources) && event.sources.length) this.extras.append(sourcesBlock(event.sources));
        break;
      case "sql":
        this.extras.prepend(sqlDetails(event.sql, event.row_count, event.truncated));
        break;
      case "complete":
        this.completed(event);
        break;
      case "error":
        this.failed(event);
        break;
      default:
        break; // newer event types: ignore rather than break
    }
  }

  note(channel, text) {
    let node = this.notes.get(channel);
    if (!node) {
      node = el("li", { class: "activity-item note" }, el("span", { class: "activity-icon", text: "›", attrs: { "aria-hidden": "true" } }), el("span", { class: "note-text" }));
      this.notes.set(channel, node);
      this.activity.append(node);
      show(this.activity);
    }
    node.querySelector(".note-text").append(text || "");
  }

  toolStarted(event) {
    const detail = event.input ? el("code", { class: "tool-input", text: event.input }) : null;
    const item = el(
      "li",
      { class: "activity-item tool running", attrs: { "data-tool": event.tool } },
      el("span", { class: "activity-icon spinner", attrs: { "aria-hidden": "true" } }),
      el("span", { class: "tool-label", text: event.label || event.tool }),
      el("span", { class: "tool-result" }),
      detail,
    );
    this.tools.set(event.call_id, item);
    this.activity.append(item);
    show(this.activity);
  }

  toolEnded(event) {
    const item = this.tools.get(event.call_id);
    if (!item) return;
    item.classList.remove("running");
    item.classList.add(event.status === "ok" ? "ok" : "failed");
    const icon = item.querySelector(".activity-icon");
    icon.classList.remove("spinner");
    icon.textContent = event.status === "ok" ? "✓" : "✕";
    const result = [event.summary, formatDuration(event.duration_ms)].filter(Boolean).join(" · ");
    item.querySelector(".tool-result").textContent = result;
    const label = item.querySelector(".tool-label");
    label.textContent = label.textContent.replace(/…$/, "");
  }

  finish(outcome) {
    this.ended = true;
    clearTimeout(this.retryTimer);
    this.answer.classList.remove("streaming");
    this.answer.removeAttribute("aria-busy");
    this.element.classList.remove("live");
    show(this.status, false);
    for (const item of this.tools.values()) {
      if (item.classList.contains("running")) {
        item.classList.remove("running");
        item.querySelector(".activity-icon").classList.remove("spinner");
      }
    }
    if (!this.writer.text) show(this.answer, false);
    this.onEnd(outcome);
  }

  completed(event) {
    if (!this.writer.text && event.response) this.writer.append(event.response);
    const stats = event.stats || {};
    const parts = [];
    if (typeof stats.duration_ms === "number") parts.push(formatDuration(stats.duration_ms));
    if (typeof stats.tokens === "number") parts.push(`${stats.tokens} tokens`);
    if (parts.length) this.footer.append(el("span", { class: "stats", text: parts.join(" · ") }));
    this.finish("complete");
  }

  failed(event) {
    const code = event.code || "INTERNAL";
    if (code === "CANCELLED") {
      this.footer.append(el("span", { class: "badge stopped", text: "Stopped" }));
      this.finish("stopped");
      return;
    }
    const message = event.message || event.error || "Something went wrong.";
    if (code === "RATE_LIMITED") {
      this.extras.append(this.rateLimitBox(message, event.retry_after));
    } else {
      this.extras.append(this.errorBox("Something went wrong", message, code, event.retryable));
    }
    this.finish("error");
  }

  rateLimitBox(message, retryAfter) {
    const seconds = Math.max(1, Math.ceil(Number(retryAfter) || 0));
    const box = el("div", { class: "alert rate-limit", attrs: { role: "alert" } },
      el("strong", { class: "alert-title", text: "Slow down a little" }),
      el("span", { class: "alert-message", text: message }));
    if (retryAfter !== null && retryAfter !== undefined && Number.isFinite(Number(retryAfter))) {
      const until = Date.now() + seconds * 1000;
      const at = new Date(until).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
      const when = el("span", { class: "retry-when" });
      box.append(when);
      const tick = () => {
        const left = Math.ceil((until - Date.now()) / 1000);
        if (left <= 0) {
          when.textContent = "You can send again now.";
          clearInterval(this.countdown);
          return;
        }
        when.textContent = `Try again in ${left} s (at ${at}).`;
      };
      tick();
      this.countdown = setInterval(tick, 1000);
    }
    return box;
  }

  errorBox(title, message, code, retryable) {
    const box = el("div", { class: "alert error", attrs: { role: "alert" } },
      el("strong", { class: "alert-title", text: title }),
      el("span", { class: "alert-message", text: message }),
      el("span", { class: "alert-code", text: code }));
    if (retryable && this.retry) {
      box.append(el("button", { class: "link-button", text: "Try again", attrs: { type: "button" }, on: { click: () => this.retry() } }));
    }
    return box;
  }

  /** Ask the server to stop; the turn ends when its `error` CANCELLED arrives. */
  stopping() {
    if (!this.ended) this.setStatus("Stopping…");
  }

  /** The connection dropped mid-answer: this turn will never finish. */
  lost() {
    if (this.ended) return;
    this.extras.append(
      this.errorBox("Connection lost", "The connection dropped before the answer finished. Ask again once reconnected.", "CONNECTION_LOST", true),
    );
    this.finish("lost");
  }
}
