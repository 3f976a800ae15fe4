"""The caller's conversations: list, history, delete (each call is one agent query)."""

from __future__ import annotations

from aiohttp import web

from contracts.client import AgentAPIError
from gateway.admission import admit, authenticate
from gateway.app_state import AGENT, CONVERSATION_LIMITER, READ_FALLBACK_LIMITER, REQUEST_ID
from gateway.auth import Principal
from gateway.errors import NotFound
from gateway.identity import upstream_identity
from gateway.rate_limit import LimiterUnavailable
from gateway.upstream import gateway_error


async def admit_conversations(app: web.Application, principal: Principal) -> dict[str, str]:
    """One request of the conversation routes' own windows (each call is a database query)."""
    return await admit(app, principal, limiter=app[CONVERSATION_LIMITER])


async def admit_read(app: web.Application, principal: Principal) -> dict[str, str]:
    """`admit_conversations` for a read; while the shared limiter is unavailable, this replica's
    own in-process windows decide instead, so lists and history keep working (a read changes
    nothing, and each replica still bounds what one user can ask of the agent)."""
    try:
        return await admit_conversations(app, principal)
    except LimiterUnavailable:
        fallback = app.get(READ_FALLBACK_LIMITER)
        if fallback is None:
            raise
        return await admit(app, principal, limiter=fallback)


async def list_conversations(request: web.Request) -> web.Response:
    """`GET /api/conversations`: the caller's conversations, newest first."""
    principal = await authenticate(request)
    limit_headers = await admit_read(request.app, principal)
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
    limit_headers = await admit_read(request.app, principal)
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
