"""`POST /api/chat/stream`: the gateway's UI events over Server-Sent Events."""

from __future__ import annotations

import time
from typing import Final

from aiohttp import web

from contracts.ui_events import UiEvent
from gateway.admission import admit_request, authenticate
from gateway.app_state import REQUEST_ID
from gateway.request_body import ChatStreamBody, read_json
from gateway.runs import chat_request, new_conversation_id, new_message_id, refuse_if_closing
from gateway.streaming import ResponseSink, serve_stream
from gateway.ui_mapping import MappingState, opening_events, to_ui_events
from gateway.ui_wire import sse_frame

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
    ) -> None:
        super().__init__(request, response, state, to_ui_events, opening)
        self._seq = 0

    async def write(self, items: list[UiEvent]) -> None:
        """Write UI events in one write."""
        if not items:
            return
        frames = []
        for event in items:
            self._seq += 1
            frames.append(sse_frame(event, self._seq))
        await self.response.write(frames[0] if len(frames) == 1 else b"".join(frames))


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
    opening = opening_events(state, message_id=new_message_id(), request_id=request[REQUEST_ID])
    return await serve_stream(
        request,
        principal,
        chat,
        lambda response: SseSink(request, response, state, opening),
        transport="sse",
        headers=SSE_HEADERS,
        started=started,
    )
