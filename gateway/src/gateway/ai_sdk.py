"""The pure mapping from semantic events to Vercel AI SDK UI Message Stream v1 parts.

Parts keep to the strict v5/v6 schema (no extra keys on standard parts); gateway labels travel in
`data-*` parts and `providerMetadata`. Order rules the client enforces: a delta follows its
`*-start` with the same id, tool outputs follow their inputs, and every open part is closed before
`finish-step`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from contracts.agent_api import (
    AgentEvent,
    CompleteEvent,
    ErrorEvent,
    RouteDecisionEvent,
    TokenEvent,
    ToolEndEvent,
    ToolStartEvent,
)
from contracts.ui_events import ProgressStep
from gateway.ui_mapping import ROUTE_LABELS, ROUTE_STEPS, STEP_LABELS, tool_label, tool_step

Part = dict[str, Any]

UI_MESSAGE_STREAM_HEADERS: Final = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "Connection": "keep-alive",
    "x-vercel-ai-ui-message-stream": "v1",
    "X-Accel-Buffering": "no",
}
TEXT_ID: Final = "text-1"


@dataclass(slots=True)
class AiSdkState:
    """What the part mapping remembers across one run."""

    message_id: str
    conversation_id: str
    text_open: bool = False
    reasoning_id: str | None = None
    reasoning_channel: str | None = None
    reasoning_count: int = 0
    open_tools: dict[str, str] = field(default_factory=dict)
    step: ProgressStep | None = None
    finished: bool = False


def _progress(state: AiSdkState, step: ProgressStep) -> list[Part]:
    if state.step == step:
        return []
    state.step = step
    data = {"step": step, "message": STEP_LABELS[step]}
    return [{"type": "data-progress", "id": "progress", "data": data}]


def opening_parts(state: AiSdkState) -> list[Part]:
    """The parts every stream starts with."""
    return [
        {
            "type": "start",
            "messageId": state.message_id,
            "messageMetadata": {"conversationId": state.conversation_id},
        },
        {"type": "start-step"},
        *_progress(state, "agent_routing"),
    ]


def _close_reasoning(state: AiSdkState) -> list[Part]:
    if state.reasoning_id is None:
        return []
    part = {"type": "reasoning-end", "id": state.reasoning_id}
    state.reasoning_id = None
    state.reasoning_channel = None
    return [part]


def _tool_inputs(call_id: str, tool: str, given: str | None) -> list[Part]:
    common = {"toolCallId": call_id, "toolName": tool, "dynamic": True, "providerExecuted": True}
    return [
        {"type": "tool-input-start", **common},
        {"type": "tool-input-available", **common, "input": {"input": given}},
    ]


def to_ai_sdk_parts(event: AgentEvent, state: AiSdkState) -> list[Part]:
    """Map one semantic event to the stream parts it becomes; nothing after the terminal one."""
    if state.finished:
        return []
    if type(event) is TokenEvent:
        if event.channel == "final":
            if state.text_open:
                return [{"type": "text-delta", "id": TEXT_ID, "delta": event.content}]
            state.text_open = True
            return [
                *_close_reasoning(state),
                *_progress(state, "generating"),
                {"type": "text-start", "id": TEXT_ID},
                {"type": "text-delta", "id": TEXT_ID, "delta": event.content},
            ]
        if state.reasoning_channel == event.channel and state.reasoning_id is not None:
            return [{"type": "reasoning-delta", "id": state.reasoning_id, "delta": event.content}]
        out = _close_reasoning(state)
        state.reasoning_count += 1
        state.reasoning_id = f"{event.channel}-{state.reasoning_count}"
        state.reasoning_channel = event.channel
        out.append(
            {
                "type": "reasoning-start",
                "id": state.reasoning_id,
                "providerMetadata": {"gateway": {"channel": event.channel}},
            }
        )
        out.append({"type": "reasoning-delta", "id": state.reasoning_id, "delta": event.content})
        return out
    if isinstance(event, RouteDecisionEvent):
        data = {
            "route": event.route,
            "confidence": event.confidence,
            "reason": event.reason,
            "label": ROUTE_LABELS.get(event.route, event.route),
        }
        return [
            {"type": "data-route", "id": "route", "data": data},
            *_progress(state, ROUTE_STEPS.get(event.route, "generating")),
        ]
    if isinstance(event, ToolStartEvent):
        state.open_tools[event.call_id] = event.tool
        step = tool_step(event.tool)
        return [
            *(_progress(state, step) if step else []),
            {
                "type": "data-tool-label",
                "id": event.call_id,
                "data": {"label": tool_label(event.tool)},
            },
            *_tool_inputs(event.call_id, event.tool, event.input),
        ]
    if isinstance(event, ToolEndEvent):
        out = []
        if state.open_tools.pop(event.call_id, None) is None:
            out.extend(_tool_inputs(event.call_id, event.tool, None))
        common = {"toolCallId": event.call_id, "dynamic": True, "providerExecuted": True}
        if event.status == "ok":
            output = {"status": "ok", "summary": event.summary, "durationMs": event.duration_ms}
            out.append({"type": "tool-output-available", **common, "output": output})
        else:
            out.append({"type": "tool-output-error", **common, "errorText": event.summary})
        return out
    if isinstance(event, CompleteEvent):
        return _complete(event, state)
    if isinstance(event, ErrorEvent):
        return error_parts(state, event.code, event.message, retryable=event.retryable)
    return []


def _close_all(state: AiSdkState) -> list[Part]:
    out = _close_reasoning(state)
    if state.text_open:
        out.append({"type": "text-end", "id": TEXT_ID})
        state.text_open = False
    for call_id in list(state.open_tools):
        # A tool without a result would spin forever in the client.
        output = {"status": "unknown", "summary": "", "durationMs": None}
        out.append(
            {
                "type": "tool-output-available",
                "toolCallId": call_id,
                "output": output,
                "dynamic": True,
                "providerExecuted": True,
            }
        )
    state.open_tools.clear()
    return out


def _complete(event: CompleteEvent, state: AiSdkState) -> list[Part]:
    state.finished = True
    stats = event.stats
    out = _close_all(state)
    for source in stats.sources or ():
        out.append(
            {
                "type": "source-document",
                "sourceId": f"{source.doc_id}#{source.chunk_id}",
                "mediaType": "text/plain",
                "title": source.title,
            }
        )
    if stats.sql:
        data = {"sql": stats.sql, "rowCount": stats.row_count, "truncated": stats.truncated}
        out.append({"type": "data-sql", "id": "sql", "data": data})
    metadata = {
        "conversationId": stats.conversation_id or state.conversation_id,
        "stats": stats.model_dump(mode="json", exclude_none=True),
    }
    out.append({"type": "finish-step"})
    out.append({"type": "message-metadata", "messageMetadata": metadata})
    out.append({"type": "finish"})
    return out


def error_parts(
    state: AiSdkState, code: str, message: str, *, retryable: bool = False
) -> list[Part]:
    """The parts that end a stream with an error (the client throws on the `error` part)."""
    state.finished = True
    return [
        {
            "type": "data-error",
            "id": "error",
            "data": {"code": code, "message": message, "retryable": retryable},
        },
        {"type": "error", "errorText": message},
    ]
