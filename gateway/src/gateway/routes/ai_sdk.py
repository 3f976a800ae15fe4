"""`POST /api/chat`: the Vercel AI SDK UI Message Stream v1, for `useChat` unchanged."""

from __future__ import annotations

import json
import time
from typing import Any, Final, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from contracts.agent_api import MAX_MESSAGE_CHARS, Identifier
from gateway.admission import admit_request, authenticate
from gateway.ai_sdk import (
    UI_MESSAGE_STREAM_HEADERS,
    AiSdkState,
    Part,
    opening_parts,
    to_ai_sdk_parts,
)
from gateway.app_state import RUN_STORE, SETTINGS
from gateway.errors import InvalidRequest
from gateway.request_body import read_json
from gateway.resume import resumable
from gateway.runs import chat_request, new_message_id, refuse_if_closing
from gateway.streaming import RUN_ID_HEADER, FramedSink, serve_resumed, serve_stream

DONE: Final = b"data: [DONE]\n\n"
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class UseChatMessage(BaseModel):
    """A `UIMessage` as `useChat` sends it; only text parts matter here."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = ""
    role: Literal["system", "user", "assistant"]
    parts: list[dict[str, Any]] = Field(default_factory=list)


class UseChatBody(BaseModel):
    """The body `useChat`'s default transport posts (plus any extra fields, ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: Identifier
    """The chat id; used as the conversation id."""
    messages: list[UseChatMessage] = Field(min_length=1, max_length=1000)
    trigger: str | None = None
    messageId: str | None = None


def last_user_text(body: UseChatBody) -> str:
    """The text of the last user message: what this turn asks."""
    for message in reversed(body.messages):
        if message.role == "user":
            text = "".join(
                str(part.get("text", "")) for part in message.parts if part.get("type") == "text"
            ).strip()
            if not text:
                raise InvalidRequest("The last user message has no text.")
            if len(text) > MAX_MESSAGE_CHARS:
                raise InvalidRequest(f"The message is longer than {MAX_MESSAGE_CHARS} characters.")
            return text
    raise InvalidRequest("The request has no user message.")


def part_frame(part: Part) -> bytes:
    """One stream part as an SSE `data:` frame."""
    return b"data: " + _dumps(part).encode() + b"\n\n"


def ai_sdk_sink(
    request: web.Request, response: web.StreamResponse, state: AiSdkState
) -> FramedSink[AiSdkState, Part]:
    """The sink of this stream: to_ai_sdk_parts over `response`, one `part_frame` per item."""
    return FramedSink(request, response, state, to_ai_sdk_parts, opening_parts(state), part_frame)


async def chat_ai_sdk(request: web.Request) -> web.StreamResponse:
    """Stream one run as UI Message Stream v1 parts, ending with `data: [DONE]`."""
    started = time.monotonic()
    app = request.app
    refuse_if_closing(app)
    principal = await authenticate(request)
    await admit_request(request, principal)
    body = await read_json(request, UseChatBody, max_bytes=app[SETTINGS].ai_sdk_max_body_bytes)
    chat = chat_request(principal, last_user_text(body), body.id)
    state = AiSdkState(message_id=new_message_id(), conversation_id=body.id)
    return await serve_stream(
        request,
        principal,
        chat,
        lambda response: ai_sdk_sink(request, response, state),
        transport="ai_sdk",
        headers=UI_MESSAGE_STREAM_HEADERS,
        started=started,
        closing=DONE,
        run_id=state.message_id,
    )


async def resume_stream(request: web.Request) -> web.StreamResponse:
    """`GET /api/chat/{id}/stream` (`useChat({resume: true})`): the chat's run in progress,
    replayed from its start and live until it ends; 204 when none is in progress (the protocol's
    "nothing active": an ended answer is in the conversation's history)."""
    started = time.monotonic()
    app = request.app
    refuse_if_closing(app)
    principal = await authenticate(request)
    await admit_request(request, principal)
    chat_id = request.match_info["chat_id"]
    meta = await app[RUN_STORE].active_run(principal, chat_id) if resumable(app) else None
    if meta is None:
        return web.Response(status=204)
    state = AiSdkState(message_id=meta.run_id, conversation_id=meta.conversation_id)
    response = web.StreamResponse(headers={**UI_MESSAGE_STREAM_HEADERS, RUN_ID_HEADER: meta.run_id})
    return await serve_resumed(
        request,
        principal,
        meta,
        ai_sdk_sink(request, response, state),
        response=response,
        transport="ai_sdk",
        started=started,
        closing=DONE,
    )
