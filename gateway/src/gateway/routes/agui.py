"""`POST /api/agui`: an AG-UI agent endpoint (`RunAgentInput` in, AG-UI events over SSE out),
for CopilotKit and any other `@ag-ui/client` `HttpAgent`.

The thread id is the conversation id: the agent keeps the thread's history, so of the messages
the client sends only the last user message is read.
"""

from __future__ import annotations

import time

from ag_ui.core import BaseEvent, RunAgentInput
from aiohttp import web

from gateway.admission import admit_request, authenticate
from gateway.agui import (
    SSE_HEADERS,
    AguiState,
    encode,
    last_user_text,
    opening_events,
    to_agui_events,
)
from gateway.app_state import SETTINGS
from gateway.request_body import read_json
from gateway.runs import chat_request, new_message_id, refuse_if_closing
from gateway.streaming import FramedSink, serve_stream


def agui_sink(
    request: web.Request, response: web.StreamResponse, state: AguiState
) -> FramedSink[AguiState, BaseEvent]:
    """The sink of this stream: to_agui_events over `response`, one `encode` per item."""
    return FramedSink(request, response, state, to_agui_events, opening_events(state), encode)


async def run_agui(request: web.Request) -> web.StreamResponse:
    """Run one AG-UI turn: refusals (auth, body, limits) are JSON errors, then the event stream."""
    started = time.monotonic()
    app = request.app
    refuse_if_closing(app)
    principal = await authenticate(request)
    await admit_request(request, principal)
    run = await read_json(request, RunAgentInput, max_bytes=app[SETTINGS].transcript_max_body_bytes)
    chat = chat_request(principal, last_user_text(run), run.thread_id)
    state = AguiState(thread_id=run.thread_id, run_id=run.run_id, message_id=new_message_id())
    return await serve_stream(
        request,
        principal,
        chat,
        lambda response: agui_sink(request, response, state),
        transport="agui",
        headers=SSE_HEADERS,
        started=started,
    )
