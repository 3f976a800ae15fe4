// The transcript: user messages and assistant turns, live (from UI events) or from history.
// Every piece of text from the server goes in with textContent (see dom.js).

import { AnswerWriter } from "./answer.js";
import { copyButton, el, formatDuration, plural, show, timeStamp } from "./dom.js";
import { linkCitations, sourcesBlock } from "./sources.js";
import { sqlBlock } from "./sql.js";
import { resultBlock } from "./table.js";

const ROUTE_LABELS = {
  sql: "Answered from your company's data",
  rag: "Answered from your documents",
  general: "General answer",
};

// Tool names the page knows, for calls read back from the history (live ones carry their label).
const TOOL_LABELS = {
  sql_query: "Querying data",
  document_search: "Searching documents",
};

/** A user's message bubble, with its time (`at`, ISO; now when absent). */
export function userMessage(text, at = null) {
  return el("li", { class: "message user" },
    el("div", { class: "user-column" }, el("div", { class: "bubble", text }), el("div", { class: "user-meta" }, timeStamp(at))));
}

/** A tool call's row as it starts: label, result (filled at the end), and its input. */
function toolRow(call) {
  let detail = null;
  if (call.input && call.tool === "sql_query") detail = sqlBlock(call.input);
  else if (call.input) detail = el("code", { class: "tool-input", text: call.input, attrs: { title: call.input } });
  return el(
    "li",
    { class: "activity-item tool running", attrs: { "data-tool": call.tool } },
    el("span", { class: "activity-icon spinner", attrs: { "aria-hidden": "true" } }),
    el("span", { class: "tool-label", text: call.label || TOOL_LABELS[call.tool] || call.tool }),
    el("span", { class: "tool-result" }),
    detail,
  );
}

/** Mark a tool row done with its `tool_end` (status, summary, duration). */
function endToolRow(item, end) {
  item.classList.remove("running");
  item.classList.add(end.status === "ok" ? "ok" : "failed");
  const icon = item.querySelector(".activity-icon");
  icon.classList.remove("spinner");
  icon.textContent = end.status === "ok" ? "✓" : "✕";
  const result = [end.summary, formatDuration(end.duration_ms)].filter(Boolean).join(" · ");
  item.querySelector(".tool-result").textContent = result;
  const label = item.querySelector(".tool-label");
  label.textContent = label.textContent.replace(/…$/, "");
}

/** The footer's copy-answer button. */
function copyAnswer(getText) {
  return copyButton(getText, { what: "answer" });
}

function routeChip(route, label, title) {
  return el("span", {
    class: `route-chip route-${route || "general"}`,
    text: label || ROUTE_LABELS[route] || "Answer",
    attrs: { title },
  });
}

/**
 * An assistant answer from the history API: `{content, route, sql, row_count, sources, tools,
 * created_at}`, drawn like the live turn it was (tool rows, rows table, one sources list).
 */
export function historyAnswer(message) {
  const body = el("div", { class: "turn-body" });
  if (message.route) body.append(el("div", { class: "turn-meta" }, routeChip(message.route)));
  const tools = Array.isArray(message.tools) ? message.tools : [];
  if (tools.length) {
    const activity = el("ul", { class: "activity" });
    for (const call of tools) {
      const item = toolRow(call);
      endToolRow(item, call);
      activity.append(item);
    }
    body.append(activity);
  }
  const answer = el("div", { class: "answer" });
  new AnswerWriter(answer).append(message.content || "");
  body.append(answer);
  const extras = el("div", { class: "turn-extras" });
  const rows = tools.find((call) => call.table);
  if (rows) extras.append(resultBlock(rows.table) || "");
  if (message.sql && !tools.some((call) => call.tool === "sql_query")) {
    extras.append(sqlBlock(message.sql)); // recorded before tool calls were kept
  }
  if (Array.isArray(message.sources) && message.sources.length) {
    const block = sourcesBlock(message.sources, message.content || "");
    extras.append(block);
    linkCitations(answer, block);
    body.classList.add("has-sources");
  }
  body.append(extras);
  const footer = el("div", { class: "turn-footer" }, timeStamp(message.created_at));
  if (message.stopped) footer.append(el("span", { class: "badge stopped", text: "Stopped" }));
  footer.append(copyAnswer(() => message.content || ""));
  body.append(footer);
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
    this.body = el("div", { class: "turn-body" }, this.meta, this.activity, this.status, this.answer, this.extras, this.footer);
    this.element = el("li", { class: "message assistant live" }, this.body);
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
        if (Array.isArray(event.sources) && event.sources.length) {
          const block = sourcesBlock(event.sources, this.writer.text);
          this.extras.append(block);
          linkCitations(this.answer, block);
          this.body.classList.add("has-sources");
        }
        break;
      case "sql":
        // Shown once: under the tool call that ran it; here only when no tool row carries it.
        if (!this.activity.querySelector("details.sql")) this.extras.prepend(sqlBlock(event.sql));
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
    const item = toolRow(event);
    this.tools.set(event.call_id, item);
    this.activity.append(item);
    show(this.activity);
  }

  toolEnded(event) {
    const item = this.tools.get(event.call_id);
    if (!item) return;
    endToolRow(item, event);
    const rows = event.status === "ok" ? resultBlock(event.table) : null;
    if (rows) this.extras.prepend(rows);
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
    this.footer.prepend(timeStamp(null));
    if (this.writer.text) this.footer.append(copyAnswer(() => this.writer.text));
    this.onEnd(outcome);
  }

  completed(event) {
    if (!this.writer.text && event.response) this.writer.append(event.response);
    const stats = event.stats || {};
    const parts = [];
    if (typeof stats.duration_ms === "number") parts.push(formatDuration(stats.duration_ms));
    if (typeof stats.tokens === "number") parts.push(plural(stats.tokens, "token"));
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
