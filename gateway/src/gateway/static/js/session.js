// The signed-in session: the token lives in sessionStorage (this tab, survives a reload, gone when
// the tab closes); the last conversation per user and company in localStorage (not a secret).

const TOKEN_KEY = "fsa.token";
const PROFILE_KEY = "fsa.profile";
const CONVERSATION_PREFIX = "fsa.conversation.";

/** The claims of a JWT, for display only (the server verifies every token), or null. */
export function decodeClaims(token) {
  const parts = String(token).split(".");
  if (parts.length !== 3) return null;
  try {
    const json = atob(parts[1].replace(/-/g, "+").replace(/_/g, "/"));
    const bytes = Uint8Array.from(json, (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    if (!claims || typeof claims.sub !== "string") return null;
    return claims;
  } catch {
    return null;
  }
}

/** Whether the claims' `exp` has passed (with a few seconds to spare). */
export function isExpired(claims, now = Date.now()) {
  return typeof claims.exp === "number" && claims.exp * 1000 <= now + 5000;
}

function read(storage, key) {
  try {
    return storage.getItem(key);
  } catch {
    return null; // storage disabled (privacy mode): the page still works, just forgets
  }
}

function write(storage, key, value) {
  try {
    if (value === null) storage.removeItem(key);
    else storage.setItem(key, value);
  } catch {
    /* storage full or disabled: nothing to keep */
  }
}

/** The stored session `{token, claims, profile}` if it is still usable, else null. */
export function loadSession() {
  const token = read(sessionStorage, TOKEN_KEY);
  if (!token) return null;
  const claims = decodeClaims(token);
  if (!claims || isExpired(claims)) {
    clearSession();
    return null;
  }
  let profile = null;
  try {
    profile = JSON.parse(read(sessionStorage, PROFILE_KEY) || "null");
  } catch {
    profile = null;
  }
  return { token, claims, profile };
}

export function saveSession(token, profile) {
  write(sessionStorage, TOKEN_KEY, token);
  write(sessionStorage, PROFILE_KEY, profile ? JSON.stringify(profile) : null);
}

export function clearSession() {
  write(sessionStorage, TOKEN_KEY, null);
  write(sessionStorage, PROFILE_KEY, null);
}

function conversationKey(userId, companyId) {
  return `${CONVERSATION_PREFIX}${companyId}/${userId}`;
}

export function lastConversation(userId, companyId) {
  return read(localStorage, conversationKey(userId, companyId));
}

export function rememberConversation(userId, companyId, conversationId) {
  write(localStorage, conversationKey(userId, companyId), conversationId || null);
}
