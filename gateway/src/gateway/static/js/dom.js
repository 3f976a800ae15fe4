// Building DOM nodes from data. Text only ever goes in through text nodes, never parsed as HTML:
// nothing from a message, an answer, a source or an error can become markup.

/**
 * Create an element: `el("p", {class: "x", text: "hello", attrs: {"aria-label": "…"}}, child…)`.
 * `text` sets textContent; children may be nodes or strings (added as text nodes); null is skipped.
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  if (props.class) node.className = props.class;
  if (props.text !== undefined && props.text !== null) node.textContent = String(props.text);
  if (props.attrs) {
    for (const [name, value] of Object.entries(props.attrs)) {
      if (value !== undefined && value !== null && value !== false) node.setAttribute(name, String(value));
    }
  }
  if (props.on) {
    for (const [type, handler] of Object.entries(props.on)) node.addEventListener(type, handler);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Show or hide an element (the `hidden` attribute). */
export function show(node, visible = true) {
  node.hidden = !visible;
}

/** A duration for people: 840 ms, 1.2 s, 2 min 5 s. */
export function formatDuration(ms) {
  if (typeof ms !== "number" || !Number.isFinite(ms)) return "";
  if (ms < 1000) return `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

/** "just now", "5 min ago", "3 h ago", or a date. */
export function formatWhen(iso, now = Date.now()) {
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return "";
  const s = Math.max(0, (now - at) / 1000);
  if (s < 45) return "just now";
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(at).toLocaleDateString(undefined, { month: "short", day: "numeric" });
}

/** "1 row", "2 rows": a count with its noun, singular or plural. */
export function plural(n, noun, nouns = `${noun}s`) {
  return `${n} ${n === 1 ? noun : nouns}`;
}

/** A message's time: "14:05" today, "Mar 3, 14:05" before; `iso` missing means now. */
export function formatClock(iso, now = new Date()) {
  const at = iso ? new Date(iso) : now;
  if (Number.isNaN(at.getTime())) return "";
  const time = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (at.toDateString() === now.toDateString()) return time;
  return `${at.toLocaleDateString([], { month: "short", day: "numeric" })}, ${time}`;
}

/** A `<time>` element for a message, with the full date and time on hover. */
export function timeStamp(iso) {
  const at = iso ? new Date(iso) : new Date();
  if (Number.isNaN(at.getTime())) return null;
  return el("time", {
    class: "stamp",
    text: formatClock(at.toISOString()),
    attrs: { datetime: at.toISOString(), title: at.toLocaleString() },
  });
}

/** A small button that copies `getText()` to the clipboard and says so for a moment. */
export function copyButton(getText, { label = "Copy", what = "text" } = {}) {
  const button = el("button", {
    class: "copy-button",
    text: label,
    attrs: { type: "button", "aria-label": `Copy ${what}`, title: `Copy ${what}` },
  });
  let timer = null;
  button.addEventListener("click", async () => {
    let done = "Copied";
    try {
      await navigator.clipboard.writeText(getText());
    } catch {
      done = "Copy failed";
    }
    button.textContent = done;
    button.classList.toggle("copied", done === "Copied");
    clearTimeout(timer);
    timer = setTimeout(() => {
      button.textContent = label;
      button.classList.remove("copied");
    }, 1500);
  });
  return button;
}
