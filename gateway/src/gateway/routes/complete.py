"""`POST /api/chat/complete`: the non-streaming chat endpoint."""

from __future__ import annotations

import asyncio

from aiohttp import web

from contracts.client import AgentAPIError
from gateway.admission import admit, authenticate, charge_tokens, stream_lease
from gateway.app_state import AGENT, LIMITER, REQUEST_ID
from gateway.request_body import ChatStreamBody, read_json
from gateway.runs import (
    chat_request,
    completed_tokens,
    new_conversation_id,
    refuse_if_closing,
    run_reservation,
)
from gateway.upstream import gateway_error


async def chat_complete(request: web.Request) -> web.Response:
    """`POST /api/chat/complete`: run a turn to the end and answer with JSON."""
    refuse_if_closing(request.app)
    principal = await authenticate(request)
    app = request.app
    # Admitted before the body is read: a refused or slow sender costs no more than its headers.
    limit_headers = await admit(app, principal)
    body = await read_json(request, ChatStreamBody)
    conversation_id = body.conversation_id or new_conversation_id()
    chat = chat_request(principal, body.message, conversation_id)
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
    payload = {
        "answer": answer.answer,
        "conversation_id": answer.stats.conversation_id or conversation_id,
        "route": answer.route,
        "stats": answer.stats.model_dump(mode="json"),
        "tools": [tool.model_dump(mode="json") for tool in answer.tools],
    }
    return web.json_response(payload, headers=limit_headers)
