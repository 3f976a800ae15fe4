"""The non-streaming chat endpoint and the caller's conversations (list, history, delete)."""

from __future__ import annotations

from aiohttp import web

from contracts.client import AgentAPIError
from gateway.admission import admit, authenticate, charge_tokens, stream_lease
from gateway.app_state import AGENT, CONVERSATION_LIMITER, LIMITER, REQUEST_ID
from gateway.auth import Principal
from gateway.errors import NotFound
from gateway.identity import upstream_identity
from gateway.request_body import read_json
from gateway.routes.chat_sse import ChatStreamBody
from gateway.runs import (
    chat_request,
    completed_tokens,
    new_conversation_id,
    refuse_if_closing,
)
from gateway.upstream import gateway_error


async def chat_complete(request: web.Request) -> web.Response:
    """`POST /api/chat/complete`: run a turn to the end and answer with JSON."""
    refuse_if_closing(request.app)
    principal = await authenticate(request)
    body = await read_json(request, ChatStreamBody)
    conversation_id = body.conversation_id or new_conversation_id()
    chat = chat_request(principal, body.message, conversation_id)
    app = request.app
    limit_headers = await admit(app, principal)
    # A run is a run however it is delivered: it holds a stream slot and pays its tokens.
    async with stream_lease(app, principal):
        try:
            answer = await app[AGENT].chat(chat, request_id=request[REQUEST_ID])
        except AgentAPIError as exc:
            raise gateway_error(exc) from exc
        await charge_tokens(app[LIMITER], principal, completed_tokens(answer.stats))
    payload = {
        "answer": answer.answer,
        "conversation_id": answer.stats.conversation_id or conversation_id,
        "route": answer.route,
        "stats": answer.stats.model_dump(mode="json"),
        "tools": [tool.model_dump(mode="json") for tool in answer.tools],
    }
    return web.json_response(payload, headers=limit_headers)


async def admit_conversations(app: web.Application, principal: Principal) -> dict[str, str]:
    """One request of the conversation routes' own windows (each call is a database query)."""
    return await admit(app, principal, limiter=app[CONVERSATION_LIMITER])


async def list_conversations(request: web.Request) -> web.Response:
    """`GET /api/conversations`: the caller's conversations, newest first."""
    principal = await authenticate(request)
    limit_headers = await admit_conversations(request.app, principal)
    try:
        found = await request.app[AGENT].list_conversations(
            upstream_identity(principal), request_id=request[REQUEST_ID]
        )
    except AgentAPIError as exc:
        raise gateway_error(exc) from exc
    return web.json_response(found.model_dump(mode="json"), headers=limit_headers)


def _conversation_id(request: web.Request) -> str:
    conversation_id = request.match_info["conversation_id"]
    if not conversation_id:
        raise NotFound("No such conversation.")
    return conversation_id


async def get_conversation(request: web.Request) -> web.Response:
    """`GET /api/conversations/{id}`: one of the caller's conversations with its messages."""
    principal = await authenticate(request)
    limit_headers = await admit_conversations(request.app, principal)
    try:
        history = await request.app[AGENT].get_history(
            upstream_identity(principal), _conversation_id(request), request_id=request[REQUEST_ID]
        )
    except ValueError as exc:  # an id that cannot exist
        raise NotFound("No such conversation.") from exc
    except AgentAPIError as exc:
        raise gateway_error(exc) from exc
    return web.json_response(history.model_dump(mode="json"), headers=limit_headers)


async def delete_conversation(request: web.Request) -> web.Response:
    """`DELETE /api/conversations/{id}`: forget one of the caller's conversations."""
    principal = await authenticate(request)
    limit_headers = await admit_conversations(request.app, principal)
    try:
        await request.app[AGENT].delete_conversation(
            upstream_identity(principal), _conversation_id(request), request_id=request[REQUEST_ID]
        )
    except ValueError as exc:
        raise NotFound("No such conversation.") from exc
    except AgentAPIError as exc:
        raise gateway_error(exc) from exc
    return web.Response(status=204, headers=limit_headers)
