"""Server-Sent Events: a small encoder and an incremental, bounded decoder.

Both follow the WHATWG HTML "event stream" rules (§9.2.5-9.2.6). Both sit on the per-token path of
both tiers, so the common case (one JSON `data:` line per event) stays a handful of bytes
operations: the decoder works on whole buffers with `bytes.find`/`replace` and one regex match
per usual frame, never byte by byte in Python. See docs/sse-codec.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, NoReturn

DEFAULT_MAX_EVENT_BYTES: Final = 1024 * 1024
"""Default cap on one event's accumulated field lines and on one unterminated line."""

_BOM: Final = b"\xef\xbb\xbf"
_MAX_RETRY_DIGITS: Final = 10
"""Longer `retry` values (over ~115 days) are ignored rather than parsed."""
_FAST_EVENT: Final = re.compile(rb"(?:id: ([^\n\0]*)\n)?(?:event: ([^\n]*)\n)?data: ([^\n]*)\n\n")
"""The usual frame, `[id: N\\n][event: X\\n]data: D\\n\\n`, at an event boundary."""


class SSEProtocolError(ValueError):
    """The stream broke a limit; the caller should drop it.

    `events` holds the events the same `feed` call completed before the violation, in order, so a
    caller can still deliver them.
    """

    def __init__(self, message: str, events: list[SSEMessage] | None = None) -> None:
        super().__init__(message)
        self.events: list[SSEMessage] = events or []


@dataclass(frozen=True, slots=True)
class SSEMessage:
    """One dispatched event. `id` is the last event id (it persists across events, "" = none)."""

    data: str
    event: str = "message"
    id: str = ""
    retry: int | None = None
    """The reconnection time in effect when this event was dispatched, if the server set one."""


# A frozen dataclass's __init__ goes through object.__setattr__ once per field, which is about a
# third of the decoder's per-event cost; on the hot path we fill the slots directly instead.
_new: Final = object.__new__
_set_data: Final[Callable[[SSEMessage, str], None]] = vars(SSEMessage)["data"].__set__
_set_event: Final[Callable[[SSEMessage, str], None]] = vars(SSEMessage)["event"].__set__
_set_id: Final[Callable[[SSEMessage, str], None]] = vars(SSEMessage)["id"].__set__
_set_retry: Final[Callable[[SSEMessage, int | None], None]] = vars(SSEMessage)["retry"].__set__


# --- encoder --------------------------------------------------------------------------------------


def _check_field(name: str, value: str) -> None:
    if "\n" in value or "\r" in value:
        raise ValueError(f"SSE {name} must not contain CR or LF: {value[:64]!r}")


def encode_event(event: str, data: str, id: str | int | None = None) -> bytes:
    """Frame one event as `id: N\\nevent: X\\ndata: D\\n\\n`; multi-line data gets several lines."""
    if "\n" in event or "\r" in event:
        _check_field("event", event)
    if id is None:
        head = f"event: {event}\n"
    elif type(id) is int:
        head = f"id: {id}\nevent: {event}\n"
    else:
        sid = str(id)
        _check_field("id", sid)
        if "\0" in sid:
            # A receiver silently ignores an id with NUL; refuse it rather than lose it.
            raise ValueError("SSE id must not contain NUL")
        head = f"id: {sid}\nevent: {event}\n"
    if "\n" in data or "\r" in data:
        lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        body = "".join(f"data: {line}\n" for line in lines)
        return f"{head}{body}\n".encode()
    return f"{head}data: {data}\n\n".encode()


def encode_comment(text: str = "") -> bytes:
    """Frame a comment (a heartbeat), `: text\\n\\n`: receivers ignore it, proxies see traffic."""
    if not text:
        return b":\n\n"
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return ("".join(f": {line}\n" for line in lines) + "\n").encode()


def encode_retry(ms: int) -> bytes:
    """Frame a reconnection-time hint: `retry: ms\\n\\n`."""
    if type(ms) is not int or ms < 0:
        raise ValueError(f"SSE retry must be a non-negative int of milliseconds, got {ms!r}")
    return f"retry: {ms}\n\n".encode()


# --- decoder --------------------------------------------------------------------------------------


class SSEDecoder:
    """Incremental event-stream parser: `feed` bytes as they arrive, `close` at end of stream.

    Memory is bounded: an event's field lines and any unterminated line may total at most
    `max_event_bytes`, beyond which `feed` raises `SSEProtocolError` (the decoder is then
    unusable). Comments are counted in `comment_count` and passed to `on_comment` (the text after
    `:` and one optional space).
    """

    __slots__ = (
        "_at_start",
        "_closed",
        "_data",
        "_event",
        "_failed",
        "_last_id",
        "_max",
        "_on_comment",
        "_pending",
        "_retry",
        "_size",
        "_skip_lf",
        "comment_count",
        "truncated",
    )

    def __init__(
        self,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        *,
        on_comment: Callable[[str], None] | None = None,
    ) -> None:
        if max_event_bytes <= 0:
            raise ValueError("max_event_bytes must be positive")
        self._max = max_event_bytes
        self._on_comment = on_comment
        self._pending = bytearray()  # the unterminated tail of the input
        self._data: list[bytes] = []  # data values of the event being built
        self._event: bytes | None = None
        self._size = 0  # bytes of field lines of the event being built
        self._last_id = ""
        self._retry: int | None = None
        self._at_start = True  # a BOM may still have to be stripped
        self._skip_lf = False  # the previous chunk ended in CR: a leading LF completes a CRLF
        self._closed = False
        self._failed = False
        self.comment_count = 0
        """Comments seen so far (heartbeats)."""
        self.truncated = False
        """Set by `close` when the stream ended inside an event (which was discarded)."""

    @property
    def last_event_id(self) -> str:
        """The last event id the stream set ("" if none): what to send as `Last-Event-ID`."""
        return self._last_id

    @property
    def retry(self) -> int | None:
        """The last reconnection time (ms) the stream set, if any."""
        return self._retry

    @property
    def pending_bytes(self) -> int:
        """Bytes of an event or line not yet complete; 0 at a clean event boundary."""
        return len(self._pending) + self._size

    def feed(self, chunk: bytes) -> list[SSEMessage]:
        """Consume a chunk and return the events it completed, in order."""
        if self._closed or self._failed:
            raise RuntimeError("SSEDecoder: feed() after close() or after a protocol error")
        if not chunk:
            return []
        if self._at_start:
            # The stream may open with one UTF-8 BOM, possibly split across chunks.
            if self._pending:
                chunk = bytes(self._pending) + chunk
                self._pending.clear()
            if len(chunk) < 3 and _BOM.startswith(chunk):
                self._pending += chunk
                return []
            self._at_start = False
            if chunk.startswith(_BOM):
                chunk = chunk[3:]
                if not chunk:
                    return []
        elif self._skip_lf:
            self._skip_lf = False
            if chunk[0] == 0x0A:
                chunk = chunk[1:]
                if not chunk:
                    return []
        if b"\r" in chunk:
            # A CR at the very end already ends its line; a LF opening the next chunk is its pair.
            self._skip_lf = chunk[-1] == 0x0D
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        cut = chunk.rfind(b"\n")
        if cut < 0:
            self._pending += chunk
            if len(self._pending) + self._size > self._max:
                self._fail(f"an unterminated line exceeds {self._max} bytes")
            return []
        if self._pending:
            head = bytes(self._pending) + chunk[: cut + 1]
            self._pending.clear()
        else:
            head = chunk[: cut + 1]
        if cut + 1 < len(chunk):
            self._pending += chunk[cut + 1 :]
        out = self._parse(head)
        if len(self._pending) + self._size > self._max:
            self._fail(f"an unterminated line exceeds {self._max} bytes", out)
        return out

    def close(self) -> list[SSEMessage]:
        """End of stream: an incomplete event is discarded (per spec) and flagged in `truncated`."""
        if not self._closed:
            self._closed = True
            self.truncated = self.pending_bytes > 0
            self._pending.clear()
            self._data = []
            self._event = None
            self._size = 0
        return []

    def _fail(self, why: str, events: list[SSEMessage] | None = None) -> NoReturn:
        self._failed = True
        self._pending.clear()
        self._data = []
        self._size = 0
        raise SSEProtocolError(f"SSE event too large: {why} (max_event_bytes={self._max})", events)

    def _parse(self, buf: bytes) -> list[SSEMessage]:
        """Parse complete lines (`buf` ends with LF, line ends already normalised to LF)."""
        out: list[SSEMessage] = []
        pos = 0
        end = len(buf)
        match = _FAST_EVENT.match
        limit = self._max
        while pos < end:
            if self._size == 0:
                # At an event boundary the usual frame is parsed by one regex match instead of a
                # Python loop over its lines; anything unusual falls through to the line parser.
                m = match(buf, pos)
                if m is not None:
                    # Counted as the line parser does: the field lines, not the blank line.
                    if m.end() - pos - 1 > limit:
                        self._fail(f"an event's lines exceed {limit} bytes", out)
                    ident, name, data = m.groups()
                    if ident is not None:
                        self._last_id = ident.decode("utf-8", "replace")
                    msg = _new(SSEMessage)
                    _set_data(msg, data.decode("utf-8", "replace"))
                    _set_event(msg, name.decode("utf-8", "replace") if name else "message")
                    _set_id(msg, self._last_id)
                    _set_retry(msg, self._retry)
                    out.append(msg)
                    pos = m.end()
                    continue
            nl = buf.find(b"\n", pos)
            self._line(buf[pos:nl], out)
            pos = nl + 1
        return out

    def _line(self, line: bytes, out: list[SSEMessage]) -> None:
        if not line:
            # A blank line dispatches; with no data line the event is dropped (spec).
            if self._data:
                data = self._data
                raw = data[0] if len(data) == 1 else b"\n".join(data)
                name = self._event
                out.append(
                    SSEMessage(
                        raw.decode("utf-8", "replace"),
                        name.decode("utf-8", "replace") if name else "message",
                        self._last_id,
                        self._retry,
                    )
                )
                self._data = []
            self._event = None
            self._size = 0
            return
        field, colon, value = line.partition(b":")
        if colon and not field:
            self.comment_count += 1
            if self._on_comment is not None:
                self._on_comment(
                    (value[1:] if value[:1] == b" " else value).decode("utf-8", "replace")
                )
            return
        if value[:1] == b" ":
            value = value[1:]
        # +1 for the line end: the size is at least what the sender wrote.
        self._size += len(line) + 1
        if self._size > self._max:
            self._fail(f"an event's lines exceed {self._max} bytes", out)
        if field == b"data":
            self._data.append(value)
        elif field == b"event":
            self._event = value
        elif field == b"id":
            if b"\0" not in value:
                self._last_id = value.decode("utf-8", "replace")
        elif field == b"retry" and value.isdigit() and len(value) <= _MAX_RETRY_DIGITS:
            # bytes.isdigit is ASCII-only, as the spec says; the length cap keeps int() cheap.
            self._retry = int(value)
        # any other field is ignored (spec)
