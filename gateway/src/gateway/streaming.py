"""Serving one run as a stream: the mapped sink every transport writes through, and
`serve_stream`, the one sequence of the streaming HTTP routes (SSE and the AI SDK's stream).

A transport differs only in how it maps an agent event (`to_ui_events`, `to_ai_sdk_parts`), how
it writes what that becomes, what opens the stream and what closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Final, Generic, TypeVar

from aiohttp import web

from contracts.agent_api import AgentEvent, ChatRequest, CompleteEvent, ErrorEvent
from contracts.sse import encode_comment
from gateway.admission import stream_lease
from gateway.app_state import LIMIT_HEADERS, REQUEST_ID, RUN_STORE, SETTINGS
from gateway.auth import Principal
from gateway.rate_limit import Lease
from gateway.resume import resumable, start_buffered_run
from gateway.run_buffer import RunMeta
from gateway.runs import Source, open_upstream, relay_run, run_reservation

RUN_ID_HEADER: Final = "X-Run-Id"
"""The buffered run's id on a resumable stream's response (also its first event's message id)."""
HEARTBEAT: Final = encode_comment("ping")
"""A comment line: ignored by SSE clients, keeps proxies open, detects dead clients."""

S = TypeVar("S")
"""The mapping's per-run state."""
T = TypeVar("T")
"""What one agent event becomes on this transport (a UI event, an AI SDK part)."""


class MappedSink(Generic[S, T]):
    """A `gateway.relay.Sink` that maps each agent event with `mapper` and writes what a batch
    becomes in one `write`; `open()` writes what the stream starts with.

    Subclasses define `write` and `heartbeat`, the transport's own bytes.
    """

    __slots__ = ("_map", "opening", "skip", "state")

    def __init__(
        self, state: S, mapper: Callable[[AgentEvent, S], list[T]], opening: list[T]
    ) -> None:
        self.state = state
        self._map = mapper
        self.opening = opening
        self.skip = 0
        """Items the client already has (a resume): mapped as usual but not written."""

    async def write(self, items: list[T]) -> None:
        """Write mapped items, in one write where the transport allows."""
        raise NotImplementedError

    async def heartbeat(self) -> None:
        """Write something harmless so idle connections stay open and dead ones are noticed."""
        raise NotImplementedError

    async def open(self) -> None:
        """Start the stream: the events every run starts with, before the agent says anything."""
        await self._emit(self.opening)

    async def end(self, items: list[T]) -> None:
        """Write the stream's last items (what its terminal event became); a transport that can
        end its stream in the same write does so."""
        if items:
            await self.write(items)

    async def send(self, events: Sequence[AgentEvent]) -> None:
        """Map events and write what they become; a batch that ends with the run's terminal
        event ends the stream (`end`)."""
        state = self.state
        if len(events) == 1:
            out = self._map(events[0], state)
        else:
            out = []
            for event in events:
                out.extend(self._map(event, state))
        await self._emit(out, final=isinstance(events[-1], CompleteEvent | ErrorEvent))

    async def _emit(self, items: list[T], *, final: bool = False) -> None:
        if self.skip:
            dropped = min(self.skip, len(items))
            self.skip -= dropped
            items = items[dropped:]
        if final:
            await self.end(items)
        elif items:
            await self.write(items)


class ResponseSink(MappedSink[S, T]):
    """A mapped sink over a streamed HTTP response: prepared when opened, comment heartbeats.
    Subclasses define `encode`, the bytes a batch of items becomes.

    The terminal event, the transport's `closing` (the AI SDK's `[DONE]`) and the end of the
    chunked body go out in one write: a client that stops reading at the terminal event (most
    SDKs do) finds the response complete, and its HTTP client keeps the connection for the next
    request instead of closing it (before, each such request cost a new connection)."""

    __slots__ = ("closing", "ended", "request", "response")

    def __init__(
        self,
        request: web.Request,
        response: web.StreamResponse,
        state: S,
        mapper: Callable[[AgentEvent, S], list[T]],
        opening: list[T],
    ) -> None:
        super().__init__(state, mapper, opening)
        self.request = request
        self.response = response
        self.closing = b""
        """Bytes after the last event, before the body ends (set by `serve_stream`)."""
        self.ended = False
        """The body has ended (`end`): nothing more may be written."""

    def encode(self, items: list[T]) -> bytes:
        """The bytes of `items`, in order."""
        raise NotImplementedError

    async def open(self) -> None:
        """Send the status and headers, then the opening."""
        await self.response.prepare(self.request)
        await super().open()

    async def write(self, items: list[T]) -> None:
        """Write items in one write."""
        await self.response.write(self.encode(items))

    async def end(self, items: list[T]) -> None:
        """The last items, the closing and the body's end, in one write."""
        data = self.encode(items) if items else b""
        self.ended = True
        await self.response.write_eof(data + self.closing)

    async def heartbeat(self) -> None:
        """A comment line (SSE clients and the AI SDK, which reads only `data:`, skip it)."""
        await self.response.write(HEARTBEAT)


class FramedSink(ResponseSink[S, T]):
    """A response sink whose items each encode to one frame on their own (`encode`); what is
    ready goes out in one write. The AI SDK, AG-UI and OpenAI-chunk streams are this."""

    __slots__ = ("_frame",)

    def __init__(
        self,
        request: web.Request,
        response: web.StreamResponse,
        state: S,
        mapper: Callable[[AgentEvent, S], list[T]],
        opening: list[T],
        encode: Callable[[T], bytes],
    ) -> None:
        super().__init__(request, response, state, mapper, opening)
        self._frame = encode

    def encode(self, items: list[T]) -> bytes:
        """Each item's frame, joined."""
        frame = self._frame
        return b"".join(frame(item) for item in items)


SinkFactory = Callable[[web.StreamResponse], ResponseSink[S, T]]
"""The route's sink over the response `serve_stream` made."""


async def serve_stream(
    request: web.Request,
    principal: Principal,
    chat: ChatRequest,
    sink_for: SinkFactory[S, T],
    *,
    transport: str,
    headers: Mapping[str, str],
    started: float,
    closing: bytes = b"",
    run_id: str | None = None,
) -> web.StreamResponse:
    """Take a stream slot, open the agent's stream, relay it, close the stream (the route has
    admitted the request, whose RateLimit headers are in `request[LIMIT_HEADERS]`).

    Refusals up to the agent's answer (limits, busy, down) are JSON errors with their status;
    after that every ending is an event on the stream. A client that stopped reading or left has
    its connection dropped instead of the closing. With a `run_id` and resuming enabled the run
    is buffered under that id and goes on without the client (`gateway.resume`).
    """
    app = request.app
    limits = request[LIMIT_HEADERS]
    if run_id is not None and resumable(app):
        _, follower = await start_buffered_run(
            app, principal, chat, run_id=run_id, transport=transport, request_id=request[REQUEST_ID]
        )
        response = web.StreamResponse(headers={**headers, **limits, RUN_ID_HEADER: run_id})
        return await _serve(
            request,
            response,
            follower,
            sink_for(response),
            principal,
            None,
            transport,
            started,
            closing,
        )
    async with stream_lease(app, principal) as lease:
        source = await open_upstream(app, chat, request[REQUEST_ID])
        response = web.StreamResponse(headers={**headers, **limits})
        return await _serve(
            request,
            response,
            source,
            sink_for(response),
            principal,
            lease,
            transport,
            started,
            closing,
            reserve_tokens=run_reservation(app, chat),
        )


async def serve_resumed(
    request: web.Request,
    principal: Principal,
    meta: RunMeta,
    sink: ResponseSink[S, T],
    *,
    response: web.StreamResponse,
    transport: str,
    started: float,
    closing: bytes = b"",
) -> web.StreamResponse:
    """Follow a buffered run from its start (the sink skips what the client already has); the
    route has admitted the request (`admit_request`) before looking the run up."""
    app = request.app
    response.headers.update(request[LIMIT_HEADERS])
    follower = app[RUN_STORE].follow(meta)
    return await _serve(
        request, response, follower, sink, principal, None, transport, started, closing
    )


async def _serve(
    request: web.Request,
    response: web.StreamResponse,
    source: Source,
    sink: ResponseSink[S, T],
    principal: Principal,
    lease: Lease | None,
    transport: str,
    started: float,
    closing: bytes,
    *,
    reserve_tokens: int = 0,
) -> web.StreamResponse:
    """Relay a run (with its `lease`) or a buffered run's follower (no lease, not charged)."""
    app = request.app
    sink.closing = closing
    result = await relay_run(
        app,
        source=source,
        sink=sink,
        principal=principal,
        lease=lease,
        transport=transport,
        started=started,
        reserve_tokens=reserve_tokens,
    )
    if result.ending in ("slow_client", "client_gone"):
        abort_connection(request)
        return response
    if sink.ended:  # the terminal event ended the body (`ResponseSink.end`)
        return response
    try:
        async with asyncio.timeout(app[SETTINGS].write_timeout_s):
            if closing:
                await response.write(closing)
            await response.write_eof()
    except (TimeoutError, ConnectionError):
        abort_connection(request)
    return response


def abort_connection(request: web.Request) -> None:
    """Drop the client's connection now, unsent bytes included (it stopped reading or left)."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Linger 0: reset instead of the kernel holding our unsent bytes for a peer that never
        # reads them (its zero window would keep the socket and its buffers for minutes).
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
