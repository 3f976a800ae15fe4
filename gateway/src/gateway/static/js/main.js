// The chat page's controller: sign-in, the socket, conversations, and the composer.

import * as api from "./api.js";
import { el, show } from "./dom.js";
import { renderConversations } from "./sidebar.js";
import {
  clearSession,
  decodeClaims,
  isExpired,
  lastConversation,
  loadSession,
  rememberConversation,
  saveSession,
} from "./session.js";
import { helpOpen, wireShortcuts } from "./shortcuts.js";
import { ChatConnection } from "./socket.js";
import { AssistantTurn, historyAnswer, userMessage } from "./transcript.js";

const SUGGESTIONS = [
  "How many technicians are active?",
  "Top 5 technicians by revenue this year",
  "What is the overtime policy?",
  "Show me the overdue jobs",
];
const BUSY = "CONVERSATION_BUSY"; // the socket's previous turn, or the conversation elsewhere
const BUSY_RETRIES = 4; // the previous turn is still closing (just stopped): wait, then resend
const BUSY_FIRST_DELAY_MS = 250;
const $ = (id) => document.getElementById(id);

const ui = {
  signin: $("signin"),
  signinError: $("signin-error"),
  demoBlock: $("demo-users-block"),
  demoUsers: $("demo-users"),
  tokenForm: $("token-form"),
  tokenInput: $("token-input"),
  app: $("app"),
  company: $("identity-company"),
  user: $("identity-user"),
  switcher: $("switcher"),
  userSelect: $("user-select"),
  signout: $("signout"),
  menu: $("menu-button"),
  scrim: $("scrim"),
  newChat: $("new-chat"),
  list: $("conversation-list"),
  listEmpty: $("conversations-empty"),
  connection: $("connection"),
  connectionText: $("connection-text"),
  reconnectNow: $("reconnect-now"),
  notice: $("notice"),
  noticeText: $("notice-text"),
  transcript: $("transcript"),
  emptyState: $("empty-state"),
  emptyCompany: $("empty-company"),
  suggestions: $("suggestions"),
  messages: $("messages"),
  composer: $("composer"),
  input: $("composer-input"),
  send: $("send"),
  stop: $("stop"),
  shortcuts: $("shortcuts"),
};

const state = {
  users: null, // demo users (development) or null
  token: null,
  identity: null, // {userId, companyId, userName, companyName}
  connection: null,
  connected: false,
  conversationId: null,
  conversations: [],
  turn: null, // the running AssistantTurn
  lastQuestion: "",
  loadSeq: 0, // guards against a slow history load landing after a switch
};

// --- identity ------------------------------------------------------------------------------------

// Hues that read well as an accent under white text, light or dark; one per company by hash.
const COMPANY_HUES = [222, 168, 268, 14, 330, 196, 290, 140];

function companyHue(companyId) {
  let hash = 0;
  for (const ch of companyId) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return COMPANY_HUES[hash % COMPANY_HUES.length];
}

function identityFor(claims, profile) {
  const demo = state.users?.find((u) => u.user_id === claims.sub && u.company_id === claims.company_id);
  return {
    userId: claims.sub,
    companyId: claims.company_id || "",
    userName: profile?.display_name || demo?.display_name || claims.sub,
    companyName: profile?.company_name || demo?.company_name || claims.company_id || "Unknown company",
  };
}

function showIdentity() {
  const { userName, companyName, companyId, userId } = state.identity;
  ui.company.textContent = companyName;
  ui.user.textContent = userName;
  ui.emptyCompany.textContent = companyName;
  document.documentElement.style.setProperty("--company-hue", String(companyHue(companyId)));
  document.title = `${companyName} · Field Service Assistant`;
  // A demo user picks another in place of their name; a token's user just reads it.
  let picker = false;
  if (state.users) {
    ui.userSelect.value = `${userId}|${companyId}`;
    picker = ui.userSelect.value === `${userId}|${companyId}`;
    if (!picker) ui.userSelect.value = "";
  }
  show(ui.switcher, picker);
  show(ui.user, !picker);
}

/** The demo users grouped by company: the pill shows the company, the picker only the name. */
function fillUserSelect() {
  const options = [el("option", { text: "Signed in with a token", attrs: { value: "", disabled: true } })];
  const groups = new Map();
  for (const user of state.users) {
    if (!groups.has(user.company_name)) groups.set(user.company_name, el("optgroup", { attrs: { label: user.company_name } }));
    groups.get(user.company_name).append(
      el("option", { text: user.display_name, attrs: { value: `${user.user_id}|${user.company_id}` } }),
    );
  }
  ui.userSelect.replaceChildren(...options, ...groups.values());
}

function showSignIn(message = "") {
  leave();
  show(ui.app, false);
  show(ui.signin, true);
  ui.signinError.textContent = message;
  show(ui.signinError, Boolean(message));
  document.title = "Sign in · Field Service Assistant";
  const first = ui.demoUsers.querySelector("button");
  (first || ui.tokenInput).focus();
}

function renderDemoUsers() {
  if (!state.users) return;
  const items = state.users.map((user) =>
    el("li", {},
      el("button", {
        class: "demo-user",
        attrs: { type: "button", "data-user": user.user_id, "data-company": user.company_id },
        on: { click: () => signInAs(user) },
      },
      el("span", { class: "demo-user-name", text: user.display_name }),
      el("span", { class: "demo-user-company", text: user.company_name }))));
  ui.demoUsers.replaceChildren(...items);
  show(ui.demoBlock, true);
}

async function signInAs(user) {
  try {
    const token = await api.devToken(user.user_id, user.company_id);
    enter(token, user);
  } catch (error) {
    showSignIn(`Could not sign in: ${error.message}`);
  }
}

function signInWithToken(raw) {
  const token = raw.trim().replace(/^Bearer\s+/i, "");
  const claims = decodeClaims(token);
  if (!claims) {
    showSignIn("That does not look like a JWT (three dot-separated parts with a subject).");
    return;
  }
  if (isExpired(claims)) {
    showSignIn("That token has expired.");
    return;
  }
  ui.tokenInput.value = "";
  enter(token, null);
}

/** Leave the current session (socket, transcript) without forgetting the stored token. */
function leave() {
  state.loadSeq += 1; // a history still loading belongs to the session being left
  if (state.connection) state.connection.close();
  state.connection = null;
  state.connected = false;
  state.turn = null;
  state.token = null;
  state.identity = null;
  state.conversationId = null;
  state.conversations = [];
  ui.messages.replaceChildren();
  ui.list.replaceChildren();
  hideNotice();
  updateComposer();
}

function enter(token, profile) {
  leave();
  const claims = decodeClaims(token);
  state.token = token;
  state.identity = identityFor(claims, profile);
  saveSession(token, profile ? { display_name: profile.display_name, company_name: profile.company_name } : null);
  showIdentity();
  show(ui.signin, false);
  show(ui.app, true);
  state.connection = new ChatConnection({ token, onEvent, onState });
  state.connection.start();
  const remembered = lastConversation(state.identity.userId, state.identity.companyId);
  openConversation(remembered, { quiet: true });
  refreshConversations();
  ui.input.focus();
}

function signOut() {
  clearSession();
  showSignIn();
}

// --- connection ----------------------------------------------------------------------------------

function onState(connectionState, detail) {
  state.connected = connectionState === "open";
  clearInterval(onState.timer);
  if (connectionState === "open") {
    if (ui.app.dataset.connection === "reconnecting") {
      // Back after a drop: whatever failed meanwhile is stale; the list may have changed.
      hideNotice();
      refreshConversations();
    }
    show(ui.connection, false);
    ui.app.dataset.connection = "open";
  } else if (connectionState === "connecting") {
    ui.app.dataset.connection = "connecting";
    ui.connectionText.textContent = "Connecting…";
    show(ui.reconnectNow, false);
    show(ui.connection, true);
  } else if (connectionState === "reconnecting") {
    ui.app.dataset.connection = "reconnecting";
    const retryAt = detail.retryAt;
    const tick = () => {
      const left = retryAt ? Math.ceil((retryAt - Date.now()) / 1000) : 0;
      ui.connectionText.textContent =
        left > 0 ? `Connection lost. Reconnecting in ${left} s…` : "Connection lost. Reconnecting…";
    };
    tick();
    if (retryAt) onState.timer = setInterval(tick, 500);
    show(ui.reconnectNow, Boolean(retryAt));
    show(ui.connection, true);
  } else if (connectionState === "unauthorized") {
    clearSession();
    showSignIn(detail.message);
    return;
  }
  updateComposer();
}

function onEvent(event) {
  if (event.type === "connection_lost") {
    if (state.turn) state.turn.lost();
    return;
  }
  const turn = state.turn;
  if (!turn) {
    if (event.type === "error") showNotice(event.message || event.error || "Something went wrong.");
    return;
  }
  if (event.type === "error" && event.code === BUSY && !turn.started && turn.busyRetries < BUSY_RETRIES) {
    retryWhenFree(turn);
    return;
  }
  if (event.type === "start") {
    const id = event.conversation_id;
    if (id && !state.conversations.some((c) => c.id === id)) {
      // A new conversation: list it now (titled by its question); the server's list follows.
      const now = new Date().toISOString();
      state.conversations.unshift({ id, title: state.lastQuestion, created_at: now, updated_at: now });
    }
    if (id && id !== state.conversationId) setCurrentConversation(id);
    else drawConversations();
    // Stop was pressed before the server had started the run: it can act on it only now.
    if (turn.stopRequested) state.connection.send({ type: "stop" });
  }
  turn.handle(event);
  if (event.type === "error" && event.code === "UNAUTHORIZED") {
    // The token expired while the socket was open: a new one is needed.
    clearSession();
    showSignIn("Your session expired. Please sign in again.");
  }
}

// --- conversations -------------------------------------------------------------------------------

function setCurrentConversation(id) {
  state.conversationId = id;
  rememberConversation(state.identity.userId, state.identity.companyId, id);
  drawConversations();
}

function drawConversations() {
  renderConversations(ui.list, state.conversations, state.conversationId, {
    onOpen: (id) => {
      closeSidebar();
      openConversation(id);
    },
    onDelete: removeConversation,
  });
  show(ui.listEmpty, state.conversations.length === 0);
}

async function refreshConversations() {
  const token = state.token;
  try {
    const conversations = await api.listConversations(token);
    if (token !== state.token) return;
    state.conversations = conversations;
    drawConversations();
  } catch (error) {
    if (token === state.token) apiFailed(error, "Could not load your conversations");
  }
}

function stopRunning() {
  const turn = state.turn;
  if (!turn || !state.connection) return;
  turn.stopRequested = true;
  if (turn.retryTimer !== null) {
    // Not sent yet (waiting for the previous turn to close): nothing runs on the server.
    turn.handle({ type: "error", code: "CANCELLED" });
    return;
  }
  state.connection.send({ type: "stop" });
  turn.stopping();
}

function retryWhenFree(turn) {
  turn.busyRetries += 1;
  turn.setStatus("Waiting for the previous answer to finish…");
  turn.retryTimer = setTimeout(() => {
    turn.retryTimer = null;
    if (state.turn !== turn || turn.ended) return;
    if (!state.connection?.send(turn.request)) turn.lost();
  }, BUSY_FIRST_DELAY_MS * 2 ** (turn.busyRetries - 1));
}

async function openConversation(id, { quiet = false } = {}) {
  stopRunning();
  const seq = ++state.loadSeq;
  ui.messages.replaceChildren();
  state.conversationId = id || null;
  if (state.identity) rememberConversation(state.identity.userId, state.identity.companyId, state.conversationId);
  drawConversations();
  updateEmptyState();
  if (!id) return;
  ui.transcript.setAttribute("aria-busy", "true");
  try {
    const history = await api.getConversation(state.token, id);
    if (seq !== state.loadSeq) return;
    const items = [];
    for (const message of history.messages || []) {
      items.push(message.role === "user" ? userMessage(message.content, message.created_at) : historyAnswer(message));
    }
    ui.messages.replaceChildren(...items);
    updateEmptyState();
    pinToBottom();
  } catch (error) {
    if (seq !== state.loadSeq) return;
    if (error.status === 404) {
      state.conversationId = null;
      rememberConversation(state.identity.userId, state.identity.companyId, null);
      drawConversations();
      if (!quiet) showNotice("That conversation no longer exists.");
    } else {
      apiFailed(error, "Could not load the conversation");
    }
  } finally {
    if (seq === state.loadSeq) ui.transcript.removeAttribute("aria-busy");
  }
}

async function removeConversation(id) {
  try {
    await api.deleteConversation(state.token, id);
  } catch (error) {
    if (error.status !== 404) {
      apiFailed(error, "Could not delete the conversation");
      return;
    }
  }
  state.conversations = state.conversations.filter((c) => c.id !== id);
  if (id === state.conversationId) openConversation(null);
  else drawConversations();
  refreshConversations();
}

// --- notices -------------------------------------------------------------------------------------

function showNotice(text) {
  ui.noticeText.textContent = text;
  show(ui.notice, true);
}

function hideNotice() {
  show(ui.notice, false);
}

function apiFailed(error, what) {
  if (error.status === 401) {
    clearSession();
    showSignIn("Your session expired. Please sign in again.");
    return;
  }
  let text = `${what}: ${error.message}`;
  if (error.code === "RATE_LIMITED" && error.retryAfter !== null) text += ` Try again in ${Math.ceil(error.retryAfter)} s.`;
  showNotice(text);
}

// --- the composer --------------------------------------------------------------------------------

function updateEmptyState() {
  show(ui.emptyState, ui.messages.childElementCount === 0);
}

function updateComposer() {
  const running = state.turn !== null;
  show(ui.send, !running);
  show(ui.stop, running);
  ui.send.disabled = running || !state.connected || ui.input.value.trim() === "";
  ui.app.dataset.running = running ? "true" : "false";
}

function autosize() {
  ui.input.style.height = "auto";
  ui.input.style.height = `${Math.min(ui.input.scrollHeight, 200)}px`;
}

// Follow a growing answer while the reader is at the bottom; leave them be once they scroll up.
let pinned = true;

function stickToBottom() {
  if (pinned) ui.transcript.scrollTop = ui.transcript.scrollHeight;
}

function pinToBottom() {
  pinned = true;
  stickToBottom();
}

function ask(text) {
  const question = text.trim();
  if (!question || state.turn || !state.connection) return;
  if (!state.connection.isOpen) {
    showNotice("Not connected right now; your message was not sent. Reconnecting…");
    return;
  }
  hideNotice();
  const message = { type: "message", message: question };
  if (state.conversationId) message.session_id = state.conversationId;
  state.lastQuestion = question;
  const turn = new AssistantTurn({
    onEnd: (outcome) => turnEnded(turn, outcome),
    retry: () => {
      if (!state.turn) ask(question);
    },
  });
  turn.request = message;
  state.turn = turn;
  ui.messages.append(userMessage(question), turn.element);
  updateEmptyState();
  pinToBottom();
  if (!state.connection.send(message)) turn.lost();
  ui.input.value = "";
  autosize();
  updateComposer();
}

function turnEnded(turn, outcome) {
  if (state.turn !== turn) return;
  state.turn = null;
  updateComposer();
  stickToBottom();
  if (outcome !== "lost") refreshConversations();
  if (document.activeElement === ui.stop || document.activeElement === document.body) ui.input.focus();
}

function closeSidebar() {
  ui.app.classList.remove("sidebar-open");
  ui.menu.setAttribute("aria-expanded", "false");
  show(ui.scrim, false);
}

// --- wiring --------------------------------------------------------------------------------------

function wire() {
  ui.transcript.addEventListener("scroll", () => {
    const t = ui.transcript;
    pinned = t.scrollHeight - t.scrollTop - t.clientHeight < 80;
  });
  new ResizeObserver(stickToBottom).observe(ui.messages);
  ui.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    ask(ui.input.value);
  });
  ui.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      ask(ui.input.value);
    } else if (event.key === "Escape" && state.turn && !helpOpen(ui.shortcuts)) {
      event.preventDefault();
      stopRunning();
    }
  });
  ui.input.addEventListener("input", () => {
    autosize();
    updateComposer();
  });
  ui.stop.addEventListener("click", stopRunning);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && state.turn && event.target !== ui.input && !helpOpen(ui.shortcuts)) stopRunning();
  });
  const newConversation = () => {
    if (ui.app.hidden) return;
    closeSidebar();
    openConversation(null);
    ui.input.focus();
  };
  ui.newChat.addEventListener("click", newConversation);
  wireShortcuts({ input: ui.input, help: ui.shortcuts, newConversation });
  ui.signout.addEventListener("click", signOut);
  ui.userSelect.addEventListener("change", () => {
    const [userId, companyId] = ui.userSelect.value.split("|");
    const user = state.users?.find((u) => u.user_id === userId && u.company_id === companyId);
    if (user) signInAs(user);
  });
  ui.tokenForm.addEventListener("submit", (event) => {
    event.preventDefault();
    signInWithToken(ui.tokenInput.value);
  });
  ui.reconnectNow.addEventListener("click", () => state.connection?.reconnectNow());
  $("notice-close").addEventListener("click", hideNotice);
  ui.menu.addEventListener("click", () => {
    const open = !ui.app.classList.contains("sidebar-open");
    ui.app.classList.toggle("sidebar-open", open);
    ui.menu.setAttribute("aria-expanded", String(open));
    show(ui.scrim, open);
  });
  ui.scrim.addEventListener("click", closeSidebar);
  ui.suggestions.replaceChildren(
    ...SUGGESTIONS.map((text) =>
      el("li", {}, el("button", { class: "suggestion", text, attrs: { type: "button" }, on: { click: () => ask(text) } }))),
  );
}

async function boot() {
  wire();
  state.users = await api.devUsers();
  if (state.users) {
    renderDemoUsers();
    fillUserSelect();
  }
  const session = loadSession();
  if (session) enter(session.token, session.profile);
  else showSignIn();
}

boot();
