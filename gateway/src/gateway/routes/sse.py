"""`POST /api/chat/stream`: the gateway's UI events over Server-Sent Events."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from contracts.agent_api import AgentEvent, Identifier, Message
from contracts.client import EventStream
from contracts.sse import encode_comment
from contracts.ui_events import UiEvent
from gateway.admission import admit, authenticate, stream_lease
from gateway.app_state import LIMIT_HEADERS, REQUEST_ID, SETTINGS
from gateway.auth import Principal
from gateway.rate_limit import Lease
from gateway.relay import Sink
from gateway.request_body import read_json
from gateway.runs import (
    chat_request,
    new_conversation_id,
    new_message_id,
    open_upstream,
    refuse_if_closing,
    relay_run,
)
from gateway.ui_mapping import MappingState, opening_events, to_ui_events
from gateway.ui_wire import sse_frame

SSE_HEADERS: Final = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "Connection": "keep-alive",
    "X-Accel-Buffering": "no",
}
HEARTBEAT: Final = encode_comment("ping")


class ChatStreamBody(BaseModel):
    """Body of `POST /api/chat/stream` and `POST /api/chat/complete`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message: Message
    conversation_id: Identifier | None = None


class SseSink:
    """Writes UI events as SSE frames (`id`, `event`, `data`) to a prepared response."""

    __slots__ = ("_response", "_seq", "state")

    def __init__(self, response: web.StreamResponse, state: MappingState) -> None:
        self._response = response
        self.state = state
        self._seq = 0

    async def write_ui(self, events: list[UiEvent]) -> None:
        """Write UI events in one write."""
        if not events:
            return
        frames = []
        for event in events:
            self._seq += 1
            frames.append(sse_frame(event, self._seq))
        await self._response.write(frames[0] if len(frames) == 1 else b"".join(frames))

    async def send(self, events: Sequence[AgentEvent]) -> None:
        """Map events and write what they become."""
        state = self.state
        if len(events) == 1:
            await self.write_ui(to_ui_events(events[0], state))
            return
        out = []
        for event in events:
            out.extend(to_ui_events(event, state))
        await self.write_ui(out)

    async def heartbeat(self) -> None:
        """A comment line: ignored by clients, keeps proxies open, detects dead clients."""
        await self._response.write(HEARTBEAT)


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


async def chat_stream(request: web.Request) -> web.StreamResponse:
    """Stream one run's UI events; refusals (auth, body, limits) are JSON errors, before it."""
    started = time.monotonic()
    app = request.app
    refuse_if_closing(app)
    principal = await authenticate(request)
    body = await read_json(request, ChatStreamBody)
    conversation_id = body.conversation_id or new_conversation_id()
    chat = chat_request(principal, body.message, conversation_id)
    request[LIMIT_HEADERS] = await admit(app, principal)
    async with stream_lease(app, principal) as lease:
        source = await open_upstream(app, chat, request[REQUEST_ID])
        try:
            return await _relay_sse(request, source, principal, lease, conversation_id, started)
        finally:
            await source.aclose()


async def _relay_sse(
    request: web.Request,
    source: EventStream,
    principal: Principal,
    lease: Lease,
    conversation_id: str,
    started: float,
) -> web.StreamResponse:
    limits: Mapping[str, str] = request[LIMIT_HEADERS]
    response = web.StreamResponse(headers={**SSE_HEADERS, **limits})
    await response.prepare(request)
    state = MappingState(conversation_id=conversation_id)
    sink = SseSink(response, state)
    opening = opening_events(state, message_id=new_message_id(), request_id=request[REQUEST_ID])
    return await stream_run(
        request,
        response,
        RunParts(source=source, sink=sink, principal=principal, lease=lease, started=started),
        transport="sse",
        opening=lambda: sink.write_ui(opening),
    )


@dataclass(frozen=True, slots=True)
class RunParts:
    """What one streamed run relays, from where, to where, for whom."""

    source: EventStream
    sink: Sink
    principal: Principal
    lease: Lease
    started: float


async def stream_run(
    request: web.Request,
    response: web.StreamResponse,
    run: RunParts,
    *,
    transport: str,
    opening: Callable[[], Awaitable[None]],
    closing: bytes = b"",
) -> web.StreamResponse:
    """Write the opening, relay the run, write the closing, each under the write deadline; a
    client that stopped reading or left has its connection dropped instead."""
    write_timeout = request.app[SETTINGS].write_timeout_s
    try:
        async with asyncio.timeout(write_timeout):
            await opening()
    except (TimeoutError, ConnectionError):
        abort_connection(request)
        return response
    result = await relay_run(
        request.app,
        source=run.source,
        sink=run.sink,
        principal=run.principal,
        lease=run.lease,
        transport=transport,
        started=run.started,
    )
    if result.ending in ("slow_client", "client_gone"):
        abort_connection(request)
        return response
    try:
        async with asyncio.timeout(write_timeout):
            if closing:
                await response.write(closing)
            await response.write_eof()
    except (TimeoutError, ConnectionError):
        abort_connection(request)
    return response
