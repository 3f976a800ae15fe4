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

from contracts.agent_api import AgentEvent, ChatRequest
from contracts.sse import encode_comment
from gateway.admission import stream_lease
from gateway.app_state import LIMIT_HEADERS, REQUEST_ID, SETTINGS
from gateway.auth import Principal
from gateway.runs import open_upstream, relay_run, run_reservation

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

    __slots__ = ("_map", "opening", "state")

    def __init__(
        self, state: S, mapper: Callable[[AgentEvent, S], list[T]], opening: list[T]
    ) -> None:
        self.state = state
        self._map = mapper
        self.opening = opening

    async def write(self, items: list[T]) -> None:
        """Write mapped items, in one write where the transport allows."""
        raise NotImplementedError

    async def heartbeat(self) -> None:
        """Write something harmless so idle connections stay open and dead ones are noticed."""
        raise NotImplementedError

    async def open(self) -> None:
        """Start the stream: the events every run starts with, before the agent says anything."""
        await self.write(self.opening)

    async def send(self, events: Sequence[AgentEvent]) -> None:
        """Map events and write what they become."""
        state = self.state
        if len(events) == 1:
            await self.write(self._map(events[0], state))
            return
        out: list[T] = []
        for event in events:
            out.extend(self._map(event, state))
        await self.write(out)


class ResponseSink(MappedSink[S, T]):
    """A mapped sink over a streamed HTTP response: prepared when opened, comment heartbeats."""

    __slots__ = ("request", "response")

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

    async def open(self) -> None:
        """Send the status and headers, then the opening."""
        await self.response.prepare(self.request)
        await super().open()

    async def heartbeat(self) -> None:
        """A comment line (SSE clients and the AI SDK, which reads only `data:`, skip it)."""
        await self.response.write(HEARTBEAT)


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
) -> web.StreamResponse:
    """Take a stream slot, open the agent's stream, relay it, close the stream (the route has
    admitted the request, whose RateLimit headers are in `request[LIMIT_HEADERS]`).

    Refusals up to the agent's answer (limits, busy, down) are JSON errors with their status;
    after that every ending is an event on the stream. A client that stopped reading or left has
    its connection dropped instead of the closing.
    """
    app = request.app
    limits = request[LIMIT_HEADERS]
    async with stream_lease(app, principal) as lease:
        source = await open_upstream(app, chat, request[REQUEST_ID])
        response = web.StreamResponse(headers={**headers, **limits})
        result = await relay_run(
            app,
            source=source,
            sink=sink_for(response),
            principal=principal,
            lease=lease,
            transport=transport,
            started=started,
            reserve_tokens=run_reservation(app, chat),
        )
        if result.ending in ("slow_client", "client_gone"):
            abort_connection(request)
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
