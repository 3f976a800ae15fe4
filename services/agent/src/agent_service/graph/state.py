"""The workflow's state (checkpointed per conversation) and its run context (never checkpointed)."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Protocol, TypedDict

from agent_service.provider import (
    ModelProvider,
    Passage,
    QueryResult,
    SchemaTable,
    TenantContext,
    UsageMeter,
)
from contracts.agent_api import Route


class TurnRecord(TypedDict, total=False):
    role: Literal["user", "assistant"]
    content: str
    route: Route
    sql: str
    row_count: int
    sources: list[dict[str, Any]]


class AgentState(TypedDict, total=False):
    question: str
    """This turn's question; the graph's input."""
    turns: Annotated[list[TurnRecord], operator.add]
    """The whole conversation, appended to by classify (user) and finalize (assistant)."""
    memory: dict[str, Any]
    """What follow-ups need: provider memory, the last result's rows, the last route."""
    route: Route
    result: dict[str, Any] | None
    passages: list[dict[str, Any]]
    notice: str | None
    """A plain message to answer with instead of data (unanswerable, failed queries)."""


class SqlRunner(Protocol):
    async def run(self, tenant_id: str, sql: str) -> QueryResult: ...


class DocumentSearch(Protocol):
    async def search(self, company_id: str, query: str, k: int = 4) -> list[Passage]: ...


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
