// The /ws/chat connection: authenticates with the `bearer.<token>` subprotocol, reconnects with
// jittered exponential backoff, and notices a dead link with an application-level ping.

const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 10000;
const KEEPALIVE_MS = 20000; // idle time before we ping
const PONG_DEADLINE_MS = 8000; // no answer to a ping within this long: the link is dead
const CLOSE_UNAUTHENTICATED = 4401;
const CLOSE_FORBIDDEN = 4403;

/**
 * One signed-in user's socket. `onEvent(message)` gets every server message except pings/pongs;
 * `onState(state, detail)` gets "connecting", "open", "reconnecting" ({delayMs, attempt}),
 * "unauthorized" ({message}) and "closed".
 */
export class ChatConnection {
  constructor({ token, onEvent, onState }) {
    this.token = token;
    this.onEvent = onEvent;
    this.onState = onState;
    this.ws = null;
    this.attempt = 0;
    this.retryTimer = null;
    this.keepaliveTimer = null;
    this.pongTimer = null;
    this.state = "idle";
    this.stopped = false;
    this.onOnline = () => this.reconnectNow();
    window.addEventListener("online", this.onOnline);
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}/ws/chat`;
  }

  setState(state, detail = {}) {
    this.state = state;
    this.onState(state, detail);
  }

  start() {
    this.stopped = false;
    this.open();
  }

  open() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.setState(this.attempt === 0 ? "connecting" : "reconnecting", { delayMs: 0, attempt: this.attempt });
    let ws;
    try {
      ws = new WebSocket(this.url(), ["chat.v1", `bearer.${this.token}`]);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onmessage = (msg) => this.receive(msg);
    ws.onclose = (event) => this.closed(ws, event);
    ws.onerror = () => {
      /* always followed by close */
    };
  }

  receive(msg) {
    let data;
    try {
      data = JSON.parse(msg.data);
    } catch {
      return; // not ours to show
    }
    if (!data || typeof data.type !== "string") return;
    this.armKeepalive();
    if (data.type === "pong" || data.type === "ping") return;
    if (data.type === "auth_success") {
      this.attempt = 0;
      this.setState("open", { user: data.user });
      return;
    }
    if (data.type === "auth_error") {
      this.stopped = true;
      this.setState("unauthorized", { message: data.message || "Your token was refused." });
      return;
    }
    this.onEvent(data);
  }

  closed(ws, event) {
    if (ws !== this.ws) return; // an older socket we already gave up on
    this.ws = null;
    this.clearKeepalive();
    if (this.stopped) return;
    if (event.code === CLOSE_UNAUTHENTICATED || event.code === CLOSE_FORBIDDEN) {
      this.stopped = true;
      this.setState("unauthorized", { message: "Your session ended. Please sign in again." });
      return;
    }
    this.onEvent({ type: "connection_lost" });
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
    const delayMs = Math.round(base / 2 + Math.random() * (base / 2));
    this.attempt += 1;
    this.setState("reconnecting", { delayMs, attempt: this.attempt, retryAt: Date.now() + delayMs });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.open(), delayMs);
  }

  /** Try at once (the "Retry now" button, the browser coming back online). */
  reconnectNow() {
    if (this.stopped || this.ws) return;
    this.open();
  }

  armKeepalive() {
    this.clearKeepalive();
    this.keepaliveTimer = setTimeout(() => {
      if (!this.send({ type: "ping" })) return;
      this.pongTimer = setTimeout(() => this.drop(), PONG_DEADLINE_MS);
    }, KEEPALIVE_MS);
  }

  clearKeepalive() {
    clearTimeout(this.keepaliveTimer);
    clearTimeout(this.pongTimer);
  }

  /** Give up on a silent socket without waiting for TCP to notice. */
  drop() {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    ws.onclose = null;
    ws.onmessage = null;
    try {
      ws.close();
    } catch {
      /* already closing */
    }
    this.clearKeepalive();
    this.onEvent({ type: "connection_lost" });
    this.scheduleReconnect();
  }

  get isOpen() {
    return this.state === "open" && this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /** Send a message; false when the socket is not open. */
  send(message) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  /** Close for good (sign-out, user switch). */
  close() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.clearKeepalive();
    window.removeEventListener("online", this.onOnline);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = null;
      ws.onmessage = null;
      try {
        ws.close(1000, "bye");
      } catch {
        /* already closed */
      }
    }
    this.setState("closed");
  }
}
