"""The workflow's state (checkpointed per conversation) and its run context (never checkpointed)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol, TypedDict

from opentelemetry.context import Context
from opentelemetry.trace import Tracer

from agent_service.providers.base import (
    ModelProvider,
    Passage,
    QueryResult,
    SchemaTable,
    TenantContext,
    UsageMeter,
)
from agent_service.runs.events import StreamItem
from contracts.agent_api import Route
from contracts.tracing import NO_TRACER


class SourceRecord(TypedDict):
    """A passage an answer used, as `contracts.agent_api.Source` stores it."""

    doc_id: str
    title: str
    chunk_id: str
    snippet: str
    score: float


class TurnRecord(TypedDict, total=False):
    role: Literal["user", "assistant"]
    content: str
    route: Route
    sql: str
    row_count: int
    sources: list[SourceRecord]
    tools: list[dict[str, Any]]
    """The answer's `tool_end` events (with their capped rows), for the history."""
    at: str
    """When the turn was recorded (ISO 8601, UTC)."""
    stopped: bool
    """A partial answer whose run was stopped (or whose client left with resuming off)."""


class ResultRecord(TypedDict):
    """A query's result in state (what `finalize` answers from)."""

    sql: str
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool


class LastResult(TypedDict):
    """The last query of a conversation and at most `LAST_RESULT_ROWS` of its rows."""

    sql: str
    columns: list[str]
    rows: list[list[Any]]


class PassageRecord(TypedDict):
    """A retrieved passage in state (`providers.base.Passage` as a dict)."""

    doc_id: str
    title: str
    chunk_id: str
    text: str
    score: float


class Memory(TypedDict, total=False):
    """What follow-ups need, carried across turns of one conversation."""

    provider: dict[str, Any]
    """The provider's own state (`SqlDraft.memory`, merged)."""
    last_result: LastResult
    last_route: Route


MAX_KEPT_TURNS = 200
"""Turns kept in a conversation's state (100 exchanges); older ones are dropped. The provider
sees at most `AGENT_HISTORY_TURNS` of them anyway; this bounds storage and load time."""


def append_turns(kept: list[TurnRecord], new: list[TurnRecord]) -> list[TurnRecord]:
    """The `turns` reducer: append, keeping the latest `MAX_KEPT_TURNS`."""
    merged = kept + new
    return merged[-MAX_KEPT_TURNS:] if len(merged) > MAX_KEPT_TURNS else merged


class AgentState(TypedDict, total=False):
    question: str
    """This turn's question; the graph's input."""
    turns: Annotated[list[TurnRecord], append_turns]
    """The whole conversation, appended to by classify (user) and finalize (assistant)."""
    memory: Memory
    """What follow-ups need: provider memory, the last result's rows, the last route."""
    route: Route
    result: ResultRecord | None
    passages: list[PassageRecord]
    notice: str | None
    """A plain message to answer with instead of data (unanswerable, failed queries)."""
    tools: list[dict[str, Any]]
    """This turn's `tool_end` events so far; finalize records them with the answer."""


class SqlRunner(Protocol):
    async def run(self, tenant_id: str, sql: str) -> QueryResult: ...


class DocumentSearch(Protocol):
    async def search(self, company_id: str, query: str, k: int = 4) -> list[Passage]: ...


def _nothing() -> None:
    pass


@dataclass(slots=True)
class RunContext:
    """Per-run dependencies and identity, passed as LangGraph's runtime context."""

    tenant: TenantContext
    provider: ModelProvider
    sql: SqlRunner
    documents: DocumentSearch
    schema: Sequence[SchemaTable]
    usage: UsageMeter = field(default_factory=UsageMeter)
    max_sql_attempts: int = 3
    top_k: int = 4
    history_turns: int = 20
    table_max_rows: int = 50
    """Rows of a SQL result sent with its `tool_end` (and kept in the history); 0 sends none."""
    table_max_bytes: int = 8192
    tracer: Tracer = NO_TRACER
    """The service's tracer (`contracts.tracing`; the no-op one when tracing is off)."""
    trace: Context | None = None
    """The run's span as a parent context for its steps' spans (`graph.builder.traced`)."""
    deadline: float | None = None
    """When the run's total budget ends (`loop.time()`); set by the runner as the run starts."""
    out: list[StreamItem] = field(default_factory=list)
    """What the nodes streamed and the runner has not sent yet, in order (`emit`)."""
    notify: Callable[[], None] = _nothing
    """Wakes the run's reader (`runs.inline.InlineSteps.notify`); set by the runner."""

    def emit(self, item: StreamItem) -> None:
        """Stream `item` (a node's `Token`, event or `RunMeta`) after what was emitted before."""
        self.out.append(item)
        self.notify()


def utc_now() -> str:
    """When a turn happened, as stored in memory and shown in history (UTC, to the second)."""
    return datetime.now(UTC).isoformat(timespec="seconds")
