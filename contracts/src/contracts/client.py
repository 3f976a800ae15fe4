"""A typed async client for the agent service's internal API, for the gateway and other services.

`AgentClient.stream` turns `POST /internal/chat/stream` into typed `AgentEvent`s and guarantees
exactly one terminal event (`complete` or `error`): a stream that breaks, stalls past the read
timeout or ends early yields a synthetic retryable `ErrorEvent`, and nothing follows a terminal
event. Refusals before the stream starts (non-2xx) raise `AgentAPIError` instead.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Protocol, Self, TypeVar
from urllib.parse import quote

import aiohttp
from pydantic import BaseModel, ValidationError

from contracts.agent_api import (
    AGENT_EVENT_ADAPTER,
    ID_PATTERN,
    MAX_ID_CHARS,
    AgentEvent,
    ChatRequest,
    ChatResponse,
    CompleteEvent,
    ConversationHistory,
    ConversationList,
    ErrorEvent,
)
from contracts.errors import ErrorBody, ErrorCode, ServiceError
from contracts.internal_token import MAX_INTERNAL_TTL_S, RequestBinding, mint_internal_token
from contracts.sse import DEFAULT_MAX_EVENT_BYTES, SSEDecoder, SSEMessage, SSEProtocolError
from contracts.tracing import inject_traceparent


class TokenFactory(Protocol):
    """`(user_id, company_id, request_id, binding=) -> internal token`, called once per request;
    `binding` is the request's method and path, to put in the token (`htm`, `htu`)."""

    def __call__(
        self,
        user_id: str,
        company_id: str,
        request_id: str | None,
        /,
        *,
        binding: RequestBinding | None = None,
    ) -> str: ...


DEFAULT_MAX_BODY_BYTES: Final = 8 * 1024 * 1024
"""Cap on a JSON response body (and on an error body) the client will read."""
_MAX_ERROR_BODY_BYTES: Final = 64 * 1024
_ID_RE: Final = re.compile(ID_PATTERN)
_M = TypeVar("_M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Identity:
    """The caller's verified user and company; carried only in the internal token."""

    user_id: str
    company_id: str

    def __post_init__(self) -> None:
        _check_id("user_id", self.user_id)
        _check_id("company_id", self.company_id)


def _check_id(name: str, value: str) -> None:
    if not (0 < len(value) <= MAX_ID_CHARS and _ID_RE.match(value)):
        raise ValueError(
            f"{name} must be 1..{MAX_ID_CHARS} of [A-Za-z0-9_.:@-], got {value[:40]!r}"
        )


def hs256_token_factory(issuer: str, secret: str, ttl_s: int = 30) -> TokenFactory:
    """A `TokenFactory` minting HS256 internal tokens under `issuer` (ttl 1..60 s)."""
    if not 0 < ttl_s <= MAX_INTERNAL_TTL_S:
        raise ValueError(f"ttl_s must be in 1..{MAX_INTERNAL_TTL_S}")
    if not issuer or not secret:
        raise ValueError("issuer and secret must be non-empty")

    def factory(
        user_id: str,
        company_id: str,
        request_id: str | None,
        /,
        *,
        binding: RequestBinding | None = None,
    ) -> str:
        return mint_internal_token(
            issuer=issuer,
            key=secret,
            user_id=user_id,
            company_id=company_id,
            request_id=request_id,
            ttl_s=ttl_s,
            binding=binding,
        )

    return factory


class AgentAPIError(ServiceError):
    """The agent service refused or failed a request; `code` is an `ErrorCode` value (or a newer
    service's code this version does not know).

    `status` is the HTTP status received, or 503 when no response arrived at all.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        retryable: bool = False,
        retry_after: float | None = None,
        *,
        request_id: str | None = None,
        details: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message, code=code, status=status, retryable=retryable, details=details)
        self.retry_after = retry_after
        self.request_id = request_id

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


class AgentClient:
    """Client of the internal API. Use `async with AgentClient(...) as c` or call `aclose()`.

    `base_url` is one agent service, or several replicas: then every request (a stream's opening
    included) goes to the next replica in turn, and with `failover` a request that could not be
    connected goes to the next one. A request that reached a replica is never sent again, so a
    stream that started is never replayed elsewhere.

    `read_timeout_s` is the longest silence tolerated inside a stream: it must exceed the agent
    service's heartbeat interval (~15 s), or idle streams are cut. A session passed in is reused
    and never closed by the client; otherwise the client creates and owns one.
    """

    def __init__(
        self,
        base_url: str | Sequence[str],
        *,
        failover: bool = True,
        token_factory: TokenFactory,
        session: aiohttp.ClientSession | None = None,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 45.0,
        chat_timeout_s: float = 300.0,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        health_path: str = "/healthz",
        max_connections: int = 1000,
    ) -> None:
        urls = (base_url,) if isinstance(base_url, str) else tuple(base_url)
        if not urls:
            raise ValueError("at least one agent URL is required")
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"base_url must be an http(s) URL, got {url!r}")
        if min(connect_timeout_s, read_timeout_s, chat_timeout_s) <= 0:
            raise ValueError("timeouts must be positive")
        if min(max_event_bytes, max_body_bytes, max_connections) <= 0:
            raise ValueError("size limits must be positive")
        self.base_urls = tuple(url.rstrip("/") for url in urls)
        self._failover = failover
        self._turn = itertools.count()
        self._token_factory = token_factory
        self._session = session
        self._owns_session = session is None
        self._closed = False
        self._max_event_bytes = max_event_bytes
        self._max_body_bytes = max_body_bytes
        self._health_path = health_path
        self._max_connections = max_connections
        self._stream_read_s = read_timeout_s
        # sock_read bounds the wait for the stream's headers; once they came, the stream keeps
        # one deadline of its own (aiohttp's re-arms a timer on every read)
        self._stream_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout_s, sock_read=read_timeout_s
        )
        # A non-streaming chat sends nothing until the run ends, so it gets a whole-call budget.
        self._chat_timeout = aiohttp.ClientTimeout(
            total=chat_timeout_s, sock_connect=connect_timeout_s
        )
        self._call_timeout = aiohttp.ClientTimeout(
            total=read_timeout_s, sock_connect=connect_timeout_s
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session if this client created it."""
        self._closed = True
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("AgentClient is closed")
        # Created lazily: a ClientSession must be made inside the running event loop.
        if self._session is None:
            # aiohttp's default of 100 connections would silently queue the 101st stream.
            # idle connections dropped before the agent closes them (AGENT_KEEPALIVE_S)
            connector = aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=15.0)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    def _headers(
        self, user_id: str, company_id: str, request_id: str, method: str, path: str
    ) -> dict[str, str]:
        binding = RequestBinding(method=method, path=path)
        token = self._token_factory(user_id, company_id, request_id, binding=binding)
        headers = {"Authorization": f"Bearer {token}", "X-Request-ID": request_id}
        inject_traceparent(headers)  # the caller's span, when tracing is on
        return headers

    # --- streaming -------------------------------------------------------------------------------

    def stream(self, request: ChatRequest, *, request_id: str | None = None) -> EventStream:
        """Start a streamed run: `async with client.stream(req) as events: async for e in ...`."""
        return EventStream(self, request, request_id or uuid.uuid4().hex)

    async def _open_stream(self, request: ChatRequest, request_id: str) -> aiohttp.ClientResponse:
        conv = request.conversation
        headers = self._headers(
            conv.user_id, conv.company_id, request_id, "POST", "/internal/chat/stream"
        )
        headers["Content-Type"] = "application/json"
        headers["Accept"] = "text/event-stream"
        headers["Accept-Encoding"] = "identity"  # a compressed stream stalls in zlib buffers
        resp = await self._send(
            "POST",
            "/internal/chat/stream",
            headers,
            request.model_dump_json().encode(),
            self._stream_timeout,
            request_id,
        )
        ctype = resp.headers.get("Content-Type", "")
        if not ctype.startswith("text/event-stream"):
            resp.close()
            raise AgentAPIError(
                502,
                ErrorCode.UPSTREAM_PROTOCOL_ERROR,
                f"The agent service answered {ctype or 'no content type'}, not an event stream.",
                request_id=request_id,
            )
        return resp

    # --- request/response endpoints --------------------------------------------------------------

    async def chat(self, request: ChatRequest, *, request_id: str | None = None) -> ChatResponse:
        """Run a chat turn to completion (`POST /internal/chat`)."""
        rid = request_id or uuid.uuid4().hex
        conv = request.conversation
        headers = self._headers(conv.user_id, conv.company_id, rid, "POST", "/internal/chat")
        headers["Content-Type"] = "application/json"
        body = request.model_dump_json().encode()
        resp = await self._send("POST", "/internal/chat", headers, body, self._chat_timeout, rid)
        return await self._json(resp, ChatResponse, rid)

    async def list_conversations(
        self, identity: Identity, *, request_id: str | None = None
    ) -> ConversationList:
        """The identity's conversations (`GET /internal/conversations`)."""
        rid = request_id or uuid.uuid4().hex
        path = "/internal/conversations"
        headers = self._headers(identity.user_id, identity.company_id, rid, "GET", path)
        resp = await self._send("GET", path, headers, None, self._call_timeout, rid)
        return await self._json(resp, ConversationList, rid)

    async def get_history(
        self, identity: Identity, conversation_id: str, *, request_id: str | None = None
    ) -> ConversationHistory:
        """One conversation's messages; another tenant's id raises `AgentAPIError` NOT_FOUND."""
        _check_id("conversation_id", conversation_id)
        rid = request_id or uuid.uuid4().hex
        path = f"/internal/conversations/{quote(conversation_id, safe='')}"
        headers = self._headers(identity.user_id, identity.company_id, rid, "GET", path)
        resp = await self._send("GET", path, headers, None, self._call_timeout, rid)
        return await self._json(resp, ConversationHistory, rid)

    async def delete_conversation(
        self, identity: Identity, conversation_id: str, *, request_id: str | None = None
    ) -> None:
        """Delete one conversation (`DELETE /internal/conversations/{id}`)."""
        _check_id("conversation_id", conversation_id)
        rid = request_id or uuid.uuid4().hex
        path = f"/internal/conversations/{quote(conversation_id, safe='')}"
        headers = self._headers(identity.user_id, identity.company_id, rid, "DELETE", path)
        resp = await self._send("DELETE", path, headers, None, self._call_timeout, rid)
        resp.release()

    async def health(self) -> bool:
        """True when the service (one replica at least) answers its health path with 2xx;
        never raises for transport."""
        answers = await asyncio.gather(*(self._healthy(base) for base in self.base_urls))
        return any(answers)

    async def _healthy(self, base: str) -> bool:
        try:
            async with self._http().get(
                base + self._health_path, timeout=self._call_timeout
            ) as resp:
                return 200 <= resp.status < 300
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False

    # --- plumbing --------------------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes | None,
        limits: aiohttp.ClientTimeout,
        request_id: str,
    ) -> aiohttp.ClientResponse:
        """Send a request (to the next replica in turn, and on to the others while none can be
        connected); a 2xx response is returned open, anything else raises AgentAPIError."""
        bases = self.base_urls
        start = next(self._turn) if len(bases) > 1 else 0
        for attempt in range(len(bases)):
            base = bases[(start + attempt) % len(bases)]
            try:
                resp = await self._http().request(
                    method, base + path, headers=headers, data=body, timeout=limits
                )
                break
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                if self._failover and attempt < len(bases) - 1 and _never_connected(exc):
                    continue
                raise AgentAPIError(
                    503,
                    ErrorCode.UPSTREAM_UNAVAILABLE,
                    "The agent service is unreachable.",
                    True,
                    request_id=request_id,
                ) from exc
        if 200 <= resp.status < 300:
            return resp
        try:
            raise await _api_error(resp, request_id)
        finally:
            resp.release()

    async def _json(self, resp: aiohttp.ClientResponse, model: type[_M], request_id: str) -> _M:
        try:
            raw = await _read_capped(resp, self._max_body_bytes)
            return model.model_validate_json(raw)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise AgentAPIError(
                503,
                ErrorCode.UPSTREAM_UNAVAILABLE,
                "The agent service stopped answering.",
                True,
                request_id=request_id,
            ) from exc
        except (ValueError, ValidationError) as exc:  # oversized or not the contract's shape
            raise AgentAPIError(
                502,
                ErrorCode.UPSTREAM_PROTOCOL_ERROR,
                "The agent service sent a response this client cannot read.",
                request_id=request_id,
            ) from exc
        finally:
            resp.release()


def _never_connected(exc: BaseException) -> bool:
    """Whether a request failed before reaching the replica (refused, unresolvable, no connect
    within the connect timeout), so sending it to another replica cannot run it twice."""
    return isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)


async def _read_capped(resp: aiohttp.ClientResponse, cap: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while chunk := await resp.content.readany():
        size += len(chunk)
        if size > cap:
            raise ValueError(f"response body exceeds {cap} bytes")
        parts.append(chunk)
    return b"".join(parts)


async def _api_error(resp: aiohttp.ClientResponse, request_id: str) -> AgentAPIError:
    """Build the error for a non-2xx response from its `ErrorBody`, or from the status alone."""
    retry_after: float | None = None
    header = resp.headers.get("Retry-After", "")
    if header.isdigit():
        retry_after = float(header)
    try:
        body = ErrorBody.model_validate_json(await _read_capped(resp, _MAX_ERROR_BODY_BYTES))
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError, ValidationError):
        # Not our error body (a proxy's page, a cut connection): classify by status.
        unavailable = resp.status in (502, 503, 504)
        return AgentAPIError(
            resp.status,
            ErrorCode.UPSTREAM_UNAVAILABLE if unavailable else ErrorCode.UPSTREAM_PROTOCOL_ERROR,
            f"The agent service answered {resp.status} without a readable error body.",
            unavailable,
            retry_after,
            request_id=request_id,
        )
    err = body.error
    return AgentAPIError(
        resp.status,
        err.code,
        err.message,
        err.retryable,
        retry_after,
        request_id=err.request_id or request_id,
        details=err.details,
    )


class EventStream:
    """The events of one streamed run; exactly one terminal event, then the iteration stops.

    Entering the context sends the request (so refusals raise `AgentAPIError` before any event);
    leaving it, or cancelling the consumer, closes the connection, which cancels the run.
    A read that waits longer than the client's read timeout ends the stream as stalled: one timer
    per stream checks it (a read only notes its time), not one timer per read.
    """

    def __init__(self, client: AgentClient, request: ChatRequest, request_id: str) -> None:
        self.request_id = request_id
        self._client = client
        self._request = request
        self._resp: aiohttp.ClientResponse | None = None
        self._decoder = SSEDecoder(client._max_event_bytes)
        self._ready: deque[AgentEvent] = deque()
        self._done = False
        self._read_s = client._stream_read_s
        self._waiting_since: float | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self.skipped_events = 0
        """Events of a type this version does not know (a newer service): skipped, not fatal."""

    @property
    def last_event_id(self) -> str:
        """The SSE id of the last event read (the agent's per-run sequence number), or ""."""
        return self._decoder.last_event_id

    @property
    def heartbeats(self) -> int:
        """Comment lines (heartbeats) received so far."""
        return self._decoder.comment_count

    async def open(self) -> None:
        """Send the request; raises `AgentAPIError` if the service refuses it. Idempotent."""
        await self._response()

    async def _response(self) -> aiohttp.ClientResponse:
        if self._resp is None:
            if self._done:
                raise RuntimeError("EventStream is closed")
            self._resp = resp = await self._client._open_stream(self._request, self.request_id)
            protocol = resp.connection.protocol if resp.connection is not None else None
            if protocol is not None:
                protocol.read_timeout = None  # the next read drops aiohttp's timer for good
                loop = asyncio.get_running_loop()
                self._deadline = loop.call_at(loop.time() + self._read_s, self._check_stall)
        return self._resp

    def _check_stall(self) -> None:
        """The stream's one timer: a read waiting past the read timeout ends the stream."""
        self._deadline = None
        if self._done or self._resp is None or self._resp.connection is None:
            return  # ended, or closed by someone else: nothing left to watch
        loop = asyncio.get_running_loop()
        since = self._waiting_since
        if since is not None and loop.time() - since >= self._read_s:
            exc = aiohttp.SocketTimeoutError("Timeout on reading data from socket")
            self._resp.content.set_exception(exc)
            return
        due = (since if since is not None else loop.time()) + self._read_s
        self._deadline = loop.call_at(due, self._check_stall)

    def _stop_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    async def aclose(self) -> None:
        """Stop reading and close the connection (the service then cancels the run)."""
        self._done = True
        self._ready.clear()
        self._stop_deadline()
        if self._resp is not None:
            self._resp.close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> AgentEvent:
        if self._ready:
            return self._ready.popleft()
        if self._done:
            raise StopAsyncIteration
        try:
            await self._fill(await self._response())
        except BaseException:
            # Cancellation included: drop the connection now rather than when it is collected.
            await self.aclose()
            raise
        if self._ready:
            return self._ready.popleft()
        raise StopAsyncIteration

    async def _fill(self, resp: aiohttp.ClientResponse) -> None:
        """Read until at least one event is ready or the stream is over."""
        content = resp.content
        decoder = self._decoder
        loop = asyncio.get_running_loop()
        while not self._ready and not self._done:
            self._waiting_since = loop.time()
            try:
                chunk = await content.readany()
            except (aiohttp.ClientError, TimeoutError, OSError):
                self._waiting_since = None
                self._end(_synthetic(ErrorCode.UPSTREAM_UNAVAILABLE, "stopped responding"))
                return
            self._waiting_since = None
            if not chunk:
                decoder.close()
                self._end(_synthetic(ErrorCode.UPSTREAM_PROTOCOL_ERROR, "ended the stream early"))
                return
            try:
                messages = decoder.feed(chunk)
            except SSEProtocolError as exc:
                # Deliver what came before the oversized event, then end the stream with an error.
                if not self._take(exc.events):
                    oversized = "sent an oversized event"
                    self._end(_synthetic(ErrorCode.UPSTREAM_PROTOCOL_ERROR, oversized, False))
                return
            if self._take(messages):
                return

    def _take(self, messages: list[SSEMessage]) -> bool:
        """Queue the events of `messages`; True once a terminal event ended the stream."""
        for message in messages:
            event = self._parse(message)
            if event is None:
                continue
            if isinstance(event, CompleteEvent | ErrorEvent):
                self._end(event)
                return True
            self._ready.append(event)
        return False

    def _parse(self, message: SSEMessage) -> AgentEvent | None:
        # One pydantic-core call parses and validates: measured faster than json.loads plus
        # TokenEvent.model_construct (see docs/sse-codec.md), so tokens take the same path.
        try:
            event = AGENT_EVENT_ADAPTER.validate_json(message.data)
        except ValidationError as exc:
            if exc.errors()[0]["type"] == "union_tag_invalid":
                self.skipped_events += 1
                return None
            return _synthetic(ErrorCode.UPSTREAM_PROTOCOL_ERROR, "sent an invalid event", False)
        if message.event != event.event and message.event != "message":
            return _synthetic(ErrorCode.UPSTREAM_PROTOCOL_ERROR, "sent a mislabelled event", False)
        return event

    def _end(self, terminal: CompleteEvent | ErrorEvent) -> None:
        self._ready.append(terminal)
        self._done = True
        self._stop_deadline()
        if self._resp is not None:
            # Returns the connection to the pool if the body is complete, else closes it.
            self._resp.release()


def _synthetic(code: ErrorCode, what: str, retryable: bool = True) -> ErrorEvent:
    return ErrorEvent(code=code.value, message=f"The agent service {what}.", retryable=retryable)
