"""`POST /api/chat`: the AI SDK UI Message Stream v1, validated part by part against the v5 schema.

The part models below transcribe `uiMessageChunkSchema` of `ai@5` (`z.strictObject` everywhere, so
an unknown key fails the client), and `check_order` the ordering rules of
`process-ui-message-stream.ts` (deltas after their start, tool outputs after their inputs).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from support.gateway_harness import (
    Die,
    FakeUpstream,
    gateway_settings,
    rag_answer,
    running_gateway,
    sql_answer,
)

from contracts.agent_api import TokenEvent
from gateway.ai_sdk import AiSdkState, opening_parts, to_ai_sdk_parts

ProviderMetadata = dict[str, dict[str, Any]]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Start(_Part):
    type: Literal["start"]
    messageId: str | None = None
    messageMetadata: Any = None


class StartStep(_Part):
    type: Literal["start-step"]


class FinishStep(_Part):
    type: Literal["finish-step"]


class TextStart(_Part):
    type: Literal["text-start", "reasoning-start", "text-end", "reasoning-end"]
    id: str
    providerMetadata: ProviderMetadata | None = None


class TextDelta(_Part):
    type: Literal["text-delta", "reasoning-delta"]
    id: str
    delta: str
    providerMetadata: ProviderMetadata | None = None


class ToolInputStart(_Part):
    type: Literal["tool-input-start"]
    toolCallId: str
    toolName: str
    providerExecuted: bool | None = None
    dynamic: bool | None = None


class ToolInputAvailable(_Part):
    type: Literal["tool-input-available"]
    toolCallId: str
    toolName: str
    input: Any
    providerExecuted: bool | None = None
    providerMetadata: ProviderMetadata | None = None
    dynamic: bool | None = None


class ToolOutputAvailable(_Part):
    type: Literal["tool-output-available"]
    toolCallId: str
    output: Any
    providerExecuted: bool | None = None
    dynamic: bool | None = None


class ToolOutputError(_Part):
    type: Literal["tool-output-error"]
    toolCallId: str
    errorText: str
    providerExecuted: bool | None = None
    dynamic: bool | None = None


class SourceDocument(_Part):
    type: Literal["source-document"]
    sourceId: str
    mediaType: str
    title: str
    filename: str | None = None
    providerMetadata: ProviderMetadata | None = None


class SourceUrl(_Part):
    type: Literal["source-url"]
    sourceId: str
    url: str
    title: str | None = None
    providerMetadata: ProviderMetadata | None = None


class MessageMetadata(_Part):
    type: Literal["message-metadata"]
    messageMetadata: Any


class Finish(_Part):
    type: Literal["finish"]
    messageMetadata: Any = None  # v5 has no finishReason: sending one would fail the client


class ErrorPart(_Part):
    type: Literal["error"]
    errorText: str


class DataPart(_Part):
    type: str
    id: str | None = None
    data: Any
    transient: bool | None = None


StandardPart = Annotated[
    Start
    | StartStep
    | FinishStep
    | TextStart
    | TextDelta
    | ToolInputStart
    | ToolInputAvailable
    | ToolOutputAvailable
    | ToolOutputError
    | SourceDocument
    | SourceUrl
    | MessageMetadata
    | Finish
    | ErrorPart,
    Field(discriminator="type"),
]
STANDARD = TypeAdapter(StandardPart)


def validate_part(part: dict[str, Any]) -> None:
    """Fail unless the part is one the v5 client accepts."""
    if part["type"].startswith("data-"):
        DataPart.model_validate(part)
    else:
        STANDARD.validate_python(part)


def check_order(parts: list[dict[str, Any]]) -> None:
    """The client's ordering rules."""
    assert parts[0]["type"] == "start"
    active: set[str] = set()
    tools: set[str] = set()
    for part in parts:
        kind = part["type"]
        if kind in ("text-start", "reasoning-start"):
            active.add(part["id"])
        elif kind in ("text-delta", "reasoning-delta"):
            assert part["id"] in active, part
        elif kind in ("text-end", "reasoning-end"):
            assert part["id"] in active, part
            active.discard(part["id"])
        elif kind in ("tool-input-start", "tool-input-available"):
            tools.add(part["toolCallId"])
        elif kind in ("tool-output-available", "tool-output-error"):
            assert part["toolCallId"] in tools, part
        elif kind == "finish-step":
            assert not active, "open text or reasoning parts at finish-step"
    assert parts[-1]["type"] in ("finish", "error")


async def post_chat(
    url: str, body: dict[str, Any], headers: dict[str, str]
) -> tuple[aiohttp.ClientResponse, list[str]]:
    async with aiohttp.ClientSession() as s, s.post(url, json=body, headers=headers) as resp:
        raw = (await resp.read()).decode()
    frames = [f for f in raw.split("\n\n") if f]
    return resp, frames


def use_chat_body(text: str, chat_id: str = "chat123") -> dict[str, Any]:
    """What `useChat` (ai@5 DefaultChatTransport) posts."""
    return {
        "id": chat_id,
        "messages": [
            {"id": "m1", "role": "user", "parts": [{"type": "text", "text": "Hello"}]},
            {"id": "m2", "role": "assistant", "parts": [{"type": "text", "text": "Hi!"}]},
            {"id": "m3", "role": "user", "parts": [{"type": "text", "text": text}]},
        ],
        "trigger": "submit-message",
        "messageId": None,
    }


def parse_frames(frames: list[str]) -> list[dict[str, Any]]:
    assert frames[-1] == "data: [DONE]"
    parts = []
    for frame in frames[:-1]:
        if frame.startswith(":"):
            continue  # heartbeat comments are ignored by the client
        assert frame.startswith("data: ") and "\n" not in frame, frame
        part = json.loads(frame[len("data: ") :])
        validate_part(part)
        parts.append(part)
    check_order(parts)
    return parts


async def test_a_data_answer_is_a_valid_ui_message_stream(upstream: FakeUpstream) -> None:
    upstream.script = sql_answer("chat123")
    async with running_gateway(gateway_settings(upstream.url)) as gw:
        resp, frames = await post_chat(
            f"{gw.url}/api/chat", use_chat_body("How many technicians are active?"), gw.auth()
        )
    assert resp.status == 200
    assert resp.headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert resp.headers["Content-Type"] == "text/event-stream"
    assert resp.headers["X-Accel-Buffering"] == "no"
    assert "RateLimit" in resp.headers
    parts = parse_frames(frames)
    text = "".join(p["delta"] for p in parts if p["type"] == "text-delta")
    assert text == "There are 4."
    reasoning = [p for p in parts if p["type"] == "reasoning-start"]
    assert reasoning[0]["providerMetadata"] == {"gateway": {"channel": "sql_agent"}}
    output = next(p for p in parts if p["type"] == "tool-output-available")
    assert output["output"]["durationMs"] == 3.5
    sql = next(p for p in parts if p["type"] == "data-sql")
    assert sql["data"]["rowCount"] == 1
    assert [p["type"] for p in parts[-3:]] == ["finish-step", "message-metadata", "finish"]
    seen = upstream.streams()[0].body
    assert seen["input"]["message"] == "How many technicians are active?"
    assert seen["conversation"]["id"] == "chat123"


async def test_sources_become_source_documents(upstream: FakeUpstream) -> None:
    upstream.script = rag_answer("chat123")
    async with running_gateway(gateway_settings(upstream.url)) as gw:
        _, frames = await post_chat(f"{gw.url}/api/chat", use_chat_body("Warranty?"), gw.auth())
    parts = parse_frames(frames)
    (doc,) = [p for p in parts if p["type"] == "source-document"]
    assert doc["title"] == "Warranty policy"


async def test_an_upstream_death_ends_with_an_error_part(upstream: FakeUpstream) -> None:
    upstream.script = [TokenEvent(channel="final", content="There"), Die()]
    async with running_gateway(gateway_settings(upstream.url)) as gw:
        _, frames = await post_chat(f"{gw.url}/api/chat", use_chat_body("hi"), gw.auth())
    parts = parse_frames(frames)
    assert parts[-1]["type"] == "error"
    assert not any(p["type"] == "finish" for p in parts)
    code = next(p for p in parts if p["type"] == "data-error")["data"]["code"]
    assert code.startswith("UPSTREAM_")


async def test_bodies_useChat_cannot_mean_are_refused(upstream: FakeUpstream) -> None:
    async with running_gateway(gateway_settings(upstream.url)) as gw:
        no_user = use_chat_body("x")
        no_user["messages"] = no_user["messages"][1:2]
        empty = use_chat_body("   ")
        bad_id = use_chat_body("hi", chat_id="../../x")
        no_messages: dict[str, Any] = {"messages": []}
        for body in (no_user, empty, bad_id, no_messages):
            resp, frames = await post_chat(f"{gw.url}/api/chat", body, gw.auth())
            assert resp.status == 400
            assert json.loads(frames[0])["error"]["code"] == "INVALID_REQUEST"
    assert upstream.streams() == []


def test_mapping_keeps_to_the_schema_for_every_event_order() -> None:
    """Pure check: reasoning on two channels, a tool without a start, a tool without an end."""
    from support.gateway_harness import stats

    from contracts.agent_api import AgentEvent, CompleteEvent, ToolEndEvent, ToolStartEvent

    state = AiSdkState(message_id="m", conversation_id="c")
    events: list[AgentEvent] = [
        TokenEvent(channel="sql_agent", content="a"),
        TokenEvent(channel="rag_agent", content="b"),
        ToolEndEvent(tool="t", call_id="orphan", status="error", summary="boom", duration_ms=1),
        ToolStartEvent(tool="sql_query", call_id="open"),
        TokenEvent(channel="final", content="x"),
        TokenEvent(channel="sql_agent", content="late"),
        CompleteEvent(stats=stats()),
        TokenEvent(channel="final", content="after the end"),
    ]
    parts = opening_parts(state)
    for event in events:
        parts.extend(to_ai_sdk_parts(event, state))
    for part in parts:
        validate_part(part)
    check_order(parts)
    assert sum(p["type"] == "reasoning-start" for p in parts) == 3
    assert not any(p.get("delta") == "after the end" for p in parts)
    assert {p["toolCallId"] for p in parts if p["type"] == "tool-output-available"} == {"open"}


async def test_resume_has_nothing_to_resume(upstream: FakeUpstream) -> None:
    async with running_gateway(gateway_settings(upstream.url)) as gw, aiohttp.ClientSession() as s:
        async with s.get(f"{gw.url}/api/chat/chat123/stream", headers=gw.auth()) as resp:
            assert resp.status == 204
        async with s.get(f"{gw.url}/api/chat/chat123/stream") as resp:
            assert resp.status == 401
