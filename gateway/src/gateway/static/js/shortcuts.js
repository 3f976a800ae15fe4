// The page's single-key shortcuts (when not typing) and their help popover (index.html #shortcuts).

/** True when a key press is meant as text (an input, a select, an editable element). */
function typing(target) {
  return target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
}

/** Wire `/` (focus the question), `n` (new conversation) and `?` (this help). */
export function wireShortcuts({ input, help, newConversation }) {
  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    if (event.key === "?") {
      event.preventDefault();
      help.togglePopover();
    } else if (event.key === "/") {
      event.preventDefault();
      if (help.matches(":popover-open")) help.hidePopover();
      input.focus();
    } else if (event.key === "n") {
      event.preventDefault();
      if (help.matches(":popover-open")) help.hidePopover();
      newConversation();
    }
  });
}

/** Whether the help is open (Esc closes it rather than stopping an answer). */
export function helpOpen(help) {
  return help.matches(":popover-open");
}
