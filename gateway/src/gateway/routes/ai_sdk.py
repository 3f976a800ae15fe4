"""`POST /api/chat`: the Vercel AI SDK UI Message Stream v1, for `useChat` unchanged."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from contracts.agent_api import MAX_MESSAGE_CHARS, AgentEvent, Identifier
from contracts.client import EventStream
from gateway.admission import admit, authenticate, stream_lease
from gateway.ai_sdk import (
    UI_MESSAGE_STREAM_HEADERS,
    AiSdkState,
    Part,
    opening_parts,
    to_ai_sdk_parts,
)
from gateway.app_state import LIMIT_HEADERS, REQUEST_ID, SETTINGS
from gateway.auth import Principal
from gateway.errors import InvalidRequest
from gateway.rate_limit import Lease
from gateway.request_body import read_json
from gateway.routes.chat_sse import HEARTBEAT, RunParts, stream_run
from gateway.runs import (
    chat_request,
    new_message_id,
    open_upstream,
    refuse_if_closing,
)

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


class AiSdkSink:
    """Writes semantic events as UI Message Stream parts."""

    __slots__ = ("_response", "state")

    def __init__(self, response: web.StreamResponse, state: AiSdkState) -> None:
        self._response = response
        self.state = state

    async def write_parts(self, parts: list[Part]) -> None:
        """Write parts in one write."""
        if parts:
            await self._response.write(b"".join(part_frame(p) for p in parts))

    async def send(self, events: Sequence[AgentEvent]) -> None:
        """Map events and write what they become."""
        state = self.state
        if len(events) == 1:
            await self.write_parts(to_ai_sdk_parts(events[0], state))
            return
        out = []
        for event in events:
            out.extend(to_ai_sdk_parts(event, state))
        await self.write_parts(out)

    async def heartbeat(self) -> None:
        """A comment line (the AI SDK client reads only `data:`)."""
        await self._response.write(HEARTBEAT)


async def chat_ai_sdk(request: web.Request) -> web.StreamResponse:
    """Stream one run as UI Message Stream v1 parts, ending with `data: [DONE]`."""
    started = time.monotonic()
    app = request.app
    refuse_if_closing(app)
    principal = await authenticate(request)
    body = await read_json(request, UseChatBody, max_bytes=app[SETTINGS].ai_sdk_max_body_bytes)
    chat = chat_request(principal, last_user_text(body), body.id)
    request[LIMIT_HEADERS] = await admit(app, principal)
    async with stream_lease(app, principal) as lease:
        source = await open_upstream(app, chat, request[REQUEST_ID])
        try:
            return await _relay_parts(request, source, principal, lease, body.id, started)
        finally:
            await source.aclose()


async def _relay_parts(
    request: web.Request,
    source: EventStream,
    principal: Principal,
    lease: Lease,
    conversation_id: str,
    started: float,
) -> web.StreamResponse:
    limits: Mapping[str, str] = request[LIMIT_HEADERS]
    response = web.StreamResponse(headers={**UI_MESSAGE_STREAM_HEADERS, **limits})
    await response.prepare(request)
    state = AiSdkState(message_id=new_message_id(), conversation_id=conversation_id)
    sink = AiSdkSink(response, state)
    return await stream_run(
        request,
        response,
        RunParts(source=source, sink=sink, principal=principal, lease=lease, started=started),
        transport="ai_sdk",
        opening=lambda: sink.write_parts(opening_parts(state)),
        closing=DONE,
    )


async def resume_stream(request: web.Request) -> web.Response:
    """`GET /api/chat/{id}/stream` (`useChat({resume: true})`): 204, no stream to resume.

    A stream lives only as long as its connection (a client that leaves cancels the run), so
    there is never one to rejoin; 204 is the protocol's "nothing active" answer.
    """
    await authenticate(request)
    return web.Response(status=204)
