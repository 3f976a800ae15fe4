"""`POST /api/chat/complete`: the non-streaming chat endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Final

from aiohttp import web
from pydantic import TypeAdapter
from typing_extensions import TypedDict

from contracts.agent_api import ChatRequest, ChatResponse, Route, RunStats, ToolEndEvent
from contracts.client import AgentAPIError
from gateway.admission import admit_request, authenticate, charge_tokens, stream_lease
from gateway.app_state import AGENT, LIMIT_HEADERS, LIMITER, REQUEST_ID
from gateway.auth import Principal
from gateway.request_body import ChatStreamBody, read_json
from gateway.runs import (
    chat_request,
    completed_tokens,
    new_conversation_id,
    refuse_if_closing,
    run_reservation,
)
from gateway.upstream import gateway_error


class CompleteAnswer(TypedDict):
    """The body of a successful `POST /api/chat/complete`."""

    answer: str
    conversation_id: str
    route: Route | None
    stats: RunStats
    tools: list[ToolEndEvent]


ANSWER: Final[TypeAdapter[CompleteAnswer]] = TypeAdapter(CompleteAnswer)


async def complete_run(
    request: web.Request, principal: Principal, chat: ChatRequest
) -> tuple[ChatResponse, dict[str, str]]:
    """Run an admitted run (`admit_request`) to the end and charge its tokens: the answer and
    the RateLimit headers (every non-streaming chat route's sequence)."""
    app = request.app
    # A run is a run however it is delivered: it holds a stream slot and pays its tokens.
    async with stream_lease(app, principal):
        try:
            answer = await app[AGENT].chat(chat, request_id=request[REQUEST_ID])
        except AgentAPIError as exc:
            raise gateway_error(exc) from exc
        except asyncio.CancelledError:
            # The client hung up mid-run: the model was asked, so the run is not free.
            await charge_tokens(app[LIMITER], principal, run_reservation(app, chat))
            raise
        await charge_tokens(app[LIMITER], principal, completed_tokens(answer.stats))
    limits: Mapping[str, str] = request[LIMIT_HEADERS]
    return answer, dict(limits)


async def chat_complete(request: web.Request) -> web.Response:
    """`POST /api/chat/complete`: run a turn to the end and answer with JSON."""
    refuse_if_closing(request.app)
    principal = await authenticate(request)
    await admit_request(request, principal)
    body = await read_json(request, ChatStreamBody)
    conversation_id = body.conversation_id or new_conversation_id()
    chat = chat_request(principal, body.message, conversation_id)
    answer, limit_headers = await complete_run(request, principal, chat)
    payload: CompleteAnswer = {
        "answer": answer.answer,
        "conversation_id": answer.stats.conversation_id or conversation_id,
        "route": answer.route,
        "stats": answer.stats,
        "tools": list(answer.tools),
    }
    return web.json_response(ANSWER.dump_python(payload, mode="json"), headers=limit_headers)
