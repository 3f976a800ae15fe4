// The conversation list: open one, delete one (a second click confirms).

import { el, formatWhen } from "./dom.js";

const CONFIRM_MS = 4000;

/** Fill `list` with `conversations`; `current` is highlighted. */
export function renderConversations(list, conversations, current, { onOpen, onDelete }) {
  const items = conversations.map((conversation) => {
    const title = conversation.title || "Untitled conversation";
    const open = el(
      "button",
      {
        class: "conversation-open",
        attrs: { type: "button", "aria-current": conversation.id === current ? "true" : null },
        on: { click: () => onOpen(conversation.id) },
      },
      el("span", { class: "conversation-title", text: title }),
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
