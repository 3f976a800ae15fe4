"""The pure mapping from the agent's semantic events to AG-UI events (`ag-ui-protocol`).

A run is `RUN_STARTED`, then steps named for the workflow's stages (`classify`, then `sql`, `rag`
or none, then `finalize`), the SQL query and the document search as tool calls (start, args, end,
result), the answer as one assistant text message, and `RUN_FINISHED` or `RUN_ERROR`. Every
message, tool call and step is closed before the run finishes: `@ag-ui/client` verifies that.
Reasoning tokens (the classifier's and the agents' own text) are not carried.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final, Literal

from ag_ui.core import (
    BaseEvent,
    RunAgentInput,
    RunErrorEvent,
    RunFinishedEvent,
    RunStartedEvent,
    StepFinishedEvent,
    StepStartedEvent,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
    TokenUsage,
    ToolCallArgsEvent,
    ToolCallEndEvent,
    ToolCallResultEvent,
    ToolCallStartEvent,
)

from contracts.agent_api import (
    MAX_MESSAGE_CHARS,
    AgentEvent,
    CompleteEvent,
    RouteDecisionEvent,
    RunStats,
    TokenEvent,
    ToolEndEvent,
    ToolStartEvent,
)
from gateway.errors import InvalidRequest
from gateway.ui_mapping import tool_step

Step = Literal["classify", "sql", "rag", "finalize"]
ROUTE_STEPS: Final[dict[str, Step]] = {"sql": "sql", "rag": "rag", "general": "finalize"}
TOOL_STEPS: Final[dict[str, Step]] = {"querying_data": "sql", "rag_retrieval": "rag"}
_dumps: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_CONTENT_FIELDS: Final = frozenset({"type", "message_id", "delta"})
SSE_HEADERS: Final = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "Connection": "keep-alive",
    "X-Accel-Buffering": "no",
}


@dataclass(slots=True)
class AguiState:
    """What the mapping remembers across one run's events."""

    thread_id: str
    run_id: str
    message_id: str
    step: Step | None = None
    text_open: bool = False
    finished: bool = False


def last_user_text(run: RunAgentInput) -> str:
    """The text of the last user message of a `RunAgentInput`: what this run asks."""
    for message in reversed(run.messages):
        if message.role != "user":
            continue
        content = message.content
        if isinstance(content, str):
            text = content
        else:
            text = "".join(getattr(part, "text", "") for part in content if part.type == "text")
        text = text.strip()
        if not text:
            raise InvalidRequest("The last user message has no text.")
        if len(text) > MAX_MESSAGE_CHARS:
            raise InvalidRequest(f"The message is longer than {MAX_MESSAGE_CHARS} characters.")
        return text
    raise InvalidRequest("The run has no user message.")


def _step(state: AguiState, step: Step) -> list[BaseEvent]:
    """Finish the current step and start `step` (nothing if it is already the current one)."""
    if state.step == step:
        return []
    out: list[BaseEvent] = _close_step(state)
    state.step = step
    out.append(StepStartedEvent(step_name=step))
    return out


def _close_step(state: AguiState) -> list[BaseEvent]:
    if state.step is None:
        return []
    finished = StepFinishedEvent(step_name=state.step)
    state.step = None
    return [finished]


def _close_text(state: AguiState) -> list[BaseEvent]:
    if not state.text_open:
        return []
    state.text_open = False
    return [TextMessageEndEvent(message_id=state.message_id)]


def opening_events(state: AguiState) -> list[BaseEvent]:
    """What every run starts with: the run, and the classify step."""
    return [
        RunStartedEvent(thread_id=state.thread_id, run_id=state.run_id),
        *_step(state, "classify"),
    ]


def to_agui_events(event: AgentEvent, state: AguiState) -> list[BaseEvent]:
    """Map one semantic event to the AG-UI events it stands for; nothing after the run ends."""
    if state.finished:
        return []
    if isinstance(event, TokenEvent):
        if event.channel != "final" or not event.content:
            return []  # reasoning is not carried; AG-UI refuses an empty delta
        out = _step(state, "finalize")
        if not state.text_open:
            state.text_open = True
            out.append(TextMessageStartEvent(message_id=state.message_id, role="assistant"))
        # (The validating constructor: `model_construct` is 5x slower on these aliased models.)
        out.append(TextMessageContentEvent(message_id=state.message_id, delta=event.content))
        return out
    if isinstance(event, RouteDecisionEvent):
        return _step(state, ROUTE_STEPS.get(event.route, "finalize"))
    if isinstance(event, ToolStartEvent):
        return _tool_start(event, state)
    if isinstance(event, ToolEndEvent):
        return [
            ToolCallResultEvent(
                message_id=f"{event.call_id}-result",
                tool_call_id=event.call_id,
                content=json.dumps({"status": event.status, "summary": event.summary}),
                role="tool",
            )
        ]
    if isinstance(event, CompleteEvent):
        state.finished = True
        finished = RunFinishedEvent(
            thread_id=state.thread_id,
            run_id=state.run_id,
            result=run_result(event.stats),
            usage=_usage(event.stats),
        )
        return [*_close_text(state), *_close_step(state), finished]
    # The only event left: an error, which ends the run.
    state.finished = True
    return [RunErrorEvent(message=event.message, code=event.code)]


def _tool_start(event: ToolStartEvent, state: AguiState) -> list[BaseEvent]:
    stage = tool_step(event.tool)
    step = TOOL_STEPS.get(stage) if stage is not None else None
    out = _close_text(state)
    if step is not None:
        out.extend(_step(state, step))
    out.append(
        ToolCallStartEvent(
            tool_call_id=event.call_id,
            tool_call_name=event.tool,
            parent_message_id=state.message_id,
        )
    )
    out.append(
        ToolCallArgsEvent(tool_call_id=event.call_id, delta=json.dumps({"input": event.input}))
    )
    out.append(ToolCallEndEvent(tool_call_id=event.call_id))
    return out


def run_result(stats: RunStats) -> dict[str, Any]:
    """`RUN_FINISHED.result`: where the answer came from (route, SQL, sources), for a UI."""
    result: dict[str, Any] = {"conversation_id": stats.conversation_id, "route": stats.route}
    if stats.sql:
        result["sql"] = stats.sql
        result["row_count"] = stats.row_count
    if stats.sources:
        result["sources"] = [s.model_dump(mode="json") for s in stats.sources]
    if stats.unanswered:
        result["unanswered"] = stats.unanswered  # why the answer says it could not answer
    return result


def _usage(stats: RunStats) -> list[TokenUsage] | None:
    usage = stats.usage
    if usage is None:
        return None
    return [
        TokenUsage(
            input_tokens=usage.prompt_tokens,
            output_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
        )
    ]


def encode(event: BaseEvent) -> bytes:
    """One AG-UI event as an SSE `data:` frame (camelCase keys, unset fields left out).

    The per-token event is written by hand (a test checks it equals the model's own JSON): it is
    most of a stream, and `model_dump_json` costs several times as much.
    """
    if type(event) is TextMessageContentEvent and event.model_fields_set <= _CONTENT_FIELDS:
        return b"".join(
            (
                b'data: {"type":"TEXT_MESSAGE_CONTENT","messageId":',
                _dumps(event.message_id).encode(),
                b',"delta":',
                _dumps(event.delta).encode(),
                b"}\n\n",
            )
        )
    return b"data: " + event.model_dump_json(by_alias=True, exclude_none=True).encode() + b"\n\n"
