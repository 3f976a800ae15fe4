// The conversation list: open one, delete one (a second click confirms).

import { el, formatWhen } from "./dom.js";

const CONFIRM_MS = 4000;
const TITLE_CHARS = 48; // two lines of the sidebar

// Words a question is asked with, not about: dropped from the start of its title…
const LEADING = new Set(
  ("a an the is are was were be do does did can could would should will please me us i we you our " +
   "my your what what's whats which who whom how many much tell show give list find get all about " +
   "there of to for and so then have has").split(" "),
);
// …and, of these, from anywhere in it.
const FILLER = new Set("a an the our my your all please me us".split(" "));
const HOW_MANY = /^how\s+many\s+(.+?)\s+(?:are|is|were|was|do|does|did|have|has)\s+(\w+)$/i;

/**
 * A conversation's title from its first question: the meaningful words, capitalised, without the
 * question's scaffolding ("How many technicians are active?" → "Active technicians", "What is the
 * overtime policy?" → "Overtime policy"). The full question stays on hover.
 */
export function shortTitle(question) {
  const text = String(question || "").replace(/\s+/g, " ").trim().replace(/[?!.…]+$/, "");
  if (!text) return "";
  let words;
  const howMany = HOW_MANY.exec(text);
  if (howMany) words = [howMany[2], ...howMany[1].split(" ").filter((w) => !LEADING.has(w.toLowerCase()))];
  else {
    words = text.split(" ");
    const counting = /^how\s+many\b/i.test(text);
    while (words.length > 1 && LEADING.has(words[0].toLowerCase())) words.shift();
    // "How many customers do we have": the count's subject is the whole title
    if (counting) words = words.filter((w, i) => i === 0 || !LEADING.has(w.toLowerCase()));
  }
  words = words.filter((word, i) => i === 0 || !FILLER.has(word.toLowerCase()) || /^[A-Z]/.test(word));
  let title = words.join(" ");
  if (title.length > TITLE_CHARS) title = `${title.slice(0, TITLE_CHARS).replace(/\s+\S*$/, "")}…`;
  return title.charAt(0).toUpperCase() + title.slice(1);
}

/** Fill `list` with `conversations`; `current` is highlighted. */
export function renderConversations(list, conversations, current, { onOpen, onDelete }) {
  const items = conversations.map((conversation) => {
    const full = conversation.title || "Untitled conversation";
    const title = shortTitle(full) || full;
    const open = el(
      "button",
      {
        class: "conversation-open",
        attrs: { type: "button", "aria-current": conversation.id === current ? "true" : null },
        on: { click: () => onOpen(conversation.id) },
      },
      el("span", { class: "conversation-title", text: title, attrs: { title: full } }),
      el("span", { class: "conversation-when", text: formatWhen(conversation.updated_at || conversation.created_at) }),
    );
    let armed = null;
    const remove = el("button", {
      class: "conversation-delete",
      text: "✕",
      attrs: { type: "button", "aria-label": `Delete “${title}”`, title: "Delete" },
    });
    remove.addEventListener("click", () => {
      if (armed) {
        clearTimeout(armed);
        onDelete(conversation.id);
        return;
      }
      remove.classList.add("armed");
      remove.textContent = "Delete?";
      remove.setAttribute("aria-label", `Confirm deleting “${title}”`);
      armed = setTimeout(() => {
        armed = null;
        remove.classList.remove("armed");
        remove.textContent = "✕";
        remove.setAttribute("aria-label", `Delete “${title}”`);
      }, CONFIRM_MS);
    });
    return el(
      "li",
      { class: `conversation${conversation.id === current ? " current" : ""}`, attrs: { "data-id": conversation.id } },
      open,
      remove,
    );
  });
  list.replaceChildren(...items);
}
