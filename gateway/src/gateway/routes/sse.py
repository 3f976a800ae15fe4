"""`POST /api/chat/stream`: the gateway's UI events over Server-Sent Events."""

from __future__ import annotations

import time
from typing import Final

from aiohttp import web

from contracts.ui_events import UiEvent
from gateway.admission import admit_request, authenticate
from gateway.app_state import REQUEST_ID
from gateway.errors import InvalidRequest
from gateway.request_body import ChatStreamBody, read_json
from gateway.resume import find_run, stop_run
from gateway.runs import chat_request, new_conversation_id, new_message_id, refuse_if_closing
from gateway.streaming import RUN_ID_HEADER, ResponseSink, serve_resumed, serve_stream
from gateway.ui_mapping import MappingState, opening_events, to_ui_events
from gateway.ui_wire import sse_frame

MAX_EVENT_ID: Final = 10_000_000
SSE_HEADERS: Final = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "Connection": "keep-alive",
    "X-Accel-Buffering": "no",
}


class SseSink(ResponseSink[MappingState, UiEvent]):
    """Writes UI events as SSE frames (`id`, `event`, `data`), numbered from 1."""

    __slots__ = ("_seq",)

    def __init__(
        self,
        request: web.Request,
        response: web.StreamResponse,
        state: MappingState,
        opening: list[UiEvent],
        *,
        after: int = 0,
    ) -> None:
        super().__init__(request, response, state, to_ui_events, opening)
        # A resume after event `after`: the same events are mapped again, the first `after`
        # unsent, and the rest keep their numbers.
        self.skip = self._seq = after

    def encode(self, items: list[UiEvent]) -> bytes:
        """UI events as SSE frames, numbered on."""
        frames = []
        for event in items:
            self._seq += 1
            frames.append(sse_frame(event, self._seq))
        return frames[0] if len(frames) == 1 else b"".join(frames)


async def chat_stream(request: web.Request) -> web.StreamResponse:
    """Stream one run's UI events; refusals (auth, body, limits) are JSON errors, before it."""
    started = time.monotonic()
    refuse_if_closing(request.app)
    principal = await authenticate(request)
    await admit_request(request, principal)
    body = await read_json(request, ChatStreamBody)
    conversation_id = body.conversation_id or new_conversation_id()
    chat = chat_request(principal, body.message, conversation_id)
    state = MappingState(conversation_id=conversation_id)
    run_id = new_message_id()
    opening = opening_events(state, message_id=run_id, request_id=request[REQUEST_ID])
    return await serve_stream(
        request,
        principal,
        chat,
        lambda response: SseSink(request, response, state, opening),
        transport="sse",
        headers=SSE_HEADERS,
        started=started,
        run_id=run_id,
    )


def last_event_id(request: web.Request) -> int:
    """The `Last-Event-ID` header (or `?last_event_id=`): events the client already has."""
    raw = request.headers.get("Last-Event-ID") or request.query.get("last_event_id") or "0"
    try:
        after = int(raw.strip())
    except ValueError:
        raise InvalidRequest("Last-Event-ID must be the id of an event of this stream.") from None
    if not 0 <= after <= MAX_EVENT_ID:
        raise InvalidRequest("Last-Event-ID must be the id of an event of this stream.")
    return after


async def resume_chat_stream(request: web.Request) -> web.StreamResponse:
    """`GET /api/chat/runs/{run_id}/stream`: the rest of a run's UI events after
    `Last-Event-ID`, live until it ends (no second model call)."""
    started = time.monotonic()
    refuse_if_closing(request.app)
    principal = await authenticate(request)
    await admit_request(request, principal)
    after = last_event_id(request)
    meta = await find_run(request.app, principal, request.match_info["run_id"])
    state = MappingState(conversation_id=meta.conversation_id)
    opening = opening_events(state, message_id=meta.run_id, request_id=meta.request_id)
    response = web.StreamResponse(headers={**SSE_HEADERS, RUN_ID_HEADER: meta.run_id})
    sink = SseSink(request, response, state, opening, after=after)
    return await serve_resumed(
        request, principal, meta, sink, response=response, transport="sse", started=started
    )


async def stop_run_route(request: web.Request) -> web.Response:
    """`POST /api/chat/runs/{run_id}/stop`: stop a run wherever it runs (its partial answer is
    saved, marked stopped); 202 when it was running, 204 when it had already ended."""
    principal = await authenticate(request)
    meta = await find_run(request.app, principal, request.match_info["run_id"])
    return web.Response(status=202 if await stop_run(request.app, meta) else 204)
