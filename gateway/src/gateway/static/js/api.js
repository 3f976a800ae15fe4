// The gateway's REST calls (dev sign-in, conversations), with its JSON errors as ApiError.

/** A refused or failed call: `status` (0 when the network failed), stable `code`, safe `message`. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

async function call(path, { method = "GET", token = null, body = undefined } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch {
    throw new ApiError(0, "NETWORK", "Could not reach the server. Check your connection.");
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    const retry = Number.parseFloat(response.headers.get("Retry-After") || "");
    throw new ApiError(
      response.status,
      typeof error.code === "string" ? error.code : `HTTP_${response.status}`,
      typeof error.message === "string" ? error.message : `The server answered ${response.status}.`,
      Number.isFinite(retry) ? retry : null,
    );
  }
  return data;
}

/** The demo users, or null when development sign-in is off (404) or unreachable. */
export async function devUsers() {
  try {
    const data = await call("/auth/dev-users");
    return Array.isArray(data?.users) ? data.users : null;
  } catch {
    return null;
  }
}

export async function devToken(userId, companyId) {
  const data = await call("/auth/dev-token", { method: "POST", body: { user_id: userId, company_id: companyId } });
  return data.token;
}

export async function listConversations(token) {
  const data = await call("/api/conversations", { token });
  return Array.isArray(data?.conversations) ? data.conversations : [];
}

export async function getConversation(token, id) {
  return call(`/api/conversations/${encodeURIComponent(id)}`, { token });
}

export async function deleteConversation(token, id) {
  await call(`/api/conversations/${encodeURIComponent(id)}`, { method: "DELETE", token });
}
