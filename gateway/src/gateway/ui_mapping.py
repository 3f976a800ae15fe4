"""The pure mapping from the agent's semantic events to the gateway's UI events (labels, steps)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from contracts.agent_api import (
    AgentEvent,
    CompleteEvent,
    ErrorEvent,
    Route,
    RouteDecisionEvent,
    TokenEvent,
    ToolEndEvent,
    ToolStartEvent,
)
from contracts.ui_events import (
    CompleteMetadata,
    CompleteUiEvent,
    ErrorUiEvent,
    ProgressStep,
    ProgressUiEvent,
    ReasoningChannel,
    ReasoningUiEvent,
    RouteUiEvent,
    SourcesUiEvent,
    SqlUiEvent,
    StartUiEvent,
    TokenUiEvent,
    ToolEndUiEvent,
    ToolStartUiEvent,
    UiEvent,
)

STEP_LABELS: Final[dict[ProgressStep, str]] = {
    "starting": "Starting…",
    "agent_routing": "Routing your question…",
    "querying_data": "Querying data…",
    "rag_retrieval": "Searching documents…",
    "generating": "Writing the answer…",
}
ROUTE_LABELS: Final[dict[str, str]] = {
    "sql": "Answering from your company's data",
    "rag": "Answering from your documents",
    "general": "Answering directly",
}
ROUTE_STEPS: Final[dict[str, ProgressStep]] = {
    "sql": "querying_data",
    "rag": "rag_retrieval",
    "general": "generating",
}
ROUTE_AGENTS: Final[dict[str, str]] = {"sql": "sql_agent", "rag": "rag_agent", "general": "general"}


def token_ui_event(token: str) -> TokenUiEvent:
    """`TokenUiEvent(token=token)` without validation, at a third of `model_construct`'s cost.

    The per-token path: the agent's event was validated on the way in, so the text is a `str`.
    This sets exactly what `model_construct` sets (a test checks equality with the validated
    model).
    """
    event = _new(TokenUiEvent)
    _set(event, "__dict__", {"type": "token", "token": token, "partial_response": None})
    _set(event, "__pydantic_fields_set__", {"token"})
    _set(event, "__pydantic_extra__", None)
    _set(event, "__pydantic_private__", None)
    return event


def reasoning_ui_event(channel: ReasoningChannel, token: str) -> ReasoningUiEvent:
    """`ReasoningUiEvent(channel=..., token=...)` without validation (see `token_ui_event`)."""
    event = _new(ReasoningUiEvent)
    _set(event, "__dict__", {"type": "reasoning", "channel": channel, "token": token})
    _set(event, "__pydantic_fields_set__", {"channel", "token"})
    _set(event, "__pydantic_extra__", None)
    _set(event, "__pydantic_private__", None)
    return event


_new = object.__new__
_set = object.__setattr__


@dataclass(slots=True)
class MappingState:
    """What the mapping remembers across one run's events."""

    conversation_id: str
    answer_parts: list[str] = field(default_factory=list)
    route: Route | None = None
    confidence: float | None = None
    step: ProgressStep | None = None
    finished: bool = False


def tool_step(tool: str) -> ProgressStep | None:
    """The progress step a tool stands for, from its name (None: no step change)."""
    name = tool.lower()
    if "sql" in name or "query" in name or "database" in name:
        return "querying_data"
    if "search" in name or "retriev" in name or "doc" in name or "rag" in name:
        return "rag_retrieval"
    return None


def tool_label(tool: str) -> str:
    """A short label for a tool call."""
    step = tool_step(tool)
    return STEP_LABELS[step] if step is not None else f"Running {tool}…"


def _progress(state: MappingState, step: ProgressStep) -> list[UiEvent]:
    if state.step == step:
        return []
    state.step = step
    return [ProgressUiEvent(step=step, message=STEP_LABELS[step])]


def opening_events(
    state: MappingState, *, message_id: str, request_id: str | None = None
) -> list[UiEvent]:
    """The events every run starts with, before the agent says anything."""
    start = StartUiEvent(
        conversation_id=state.conversation_id,
        session_id=state.conversation_id,
        message_id=message_id,
        request_id=request_id,
    )
    return [start, *_progress(state, "agent_routing")]


def to_ui_events(event: AgentEvent, state: MappingState) -> list[UiEvent]:
    """Map one semantic event to the UI events it shows; nothing after the terminal event."""
    if state.finished:
        return []
    if type(event) is TokenEvent:
        # The per-token path: no validation, no copies of the answer so far.
        if event.channel == "final":
            state.answer_parts.append(event.content)
            token = token_ui_event(event.content)
            if state.step == "generating":
                return [token]
            return [*_progress(state, "generating"), token]
        return [reasoning_ui_event(event.channel, event.content)]
    if isinstance(event, RouteDecisionEvent):
        state.route = event.route
        state.confidence = event.confidence
        route = RouteUiEvent(
            route=event.route,
            confidence=event.confidence,
            reason=event.reason,
            label=ROUTE_LABELS.get(event.route, event.route),
        )
        return [route, *_progress(state, ROUTE_STEPS.get(event.route, "generating"))]
    if isinstance(event, ToolStartEvent):
        start = ToolStartUiEvent(
            call_id=event.call_id, tool=event.tool, label=tool_label(event.tool), input=event.input
        )
        step = tool_step(event.tool)
        return [*(_progress(state, step) if step else []), start]
    if isinstance(event, ToolEndEvent):
        return [
            ToolEndUiEvent(
                call_id=event.call_id,
                tool=event.tool,
                status=event.status,
                summary=event.summary,
                duration_ms=event.duration_ms,
                table=event.table,
            )
        ]
    if isinstance(event, CompleteEvent):
        return _complete(event, state)
    if isinstance(event, ErrorEvent):
        state.finished = True
        return [error_ui_event(event.code, event.message, retryable=event.retryable)]
    return []


def _complete(event: CompleteEvent, state: MappingState) -> list[UiEvent]:
    state.finished = True
    stats = event.stats
    out: list[UiEvent] = []
    if stats.sources:
        out.append(SourcesUiEvent(sources=stats.sources))
    if stats.sql:
        out.append(SqlUiEvent(sql=stats.sql, row_count=stats.row_count, truncated=stats.truncated))
    route = stats.route or state.route
    context = {"sources": [s.title for s in stats.sources]} if stats.sources else {}
    metadata = CompleteMetadata(
        agent=ROUTE_AGENTS.get(route, route) if route else "general",
        route=route,
        confidence=state.confidence,
        context=context,
        sql=stats.sql,
        row_count=stats.row_count,
    )
    conversation_id = stats.conversation_id or state.conversation_id
    out.append(
        CompleteUiEvent(
            response="".join(state.answer_parts),
            conversation_id=conversation_id,
            session_id=conversation_id,
            metadata=metadata,
            stats=stats,
        )
    )
    return out


def error_ui_event(
    code: str, message: str, *, retryable: bool = False, retry_after: float | None = None
) -> ErrorUiEvent:
    """The UI error event for a code and a safe message."""
    return ErrorUiEvent(
        code=code, error=message, message=message, retryable=retryable, retry_after=retry_after
    )
