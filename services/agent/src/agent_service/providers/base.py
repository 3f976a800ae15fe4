"""What the workflow asks of a model: the provider protocol and the values that cross it.

Two providers implement it: the offline provider (deterministic, the default) and the
OpenAI-compatible provider (`langchain-openai`). Graph nodes only ever talk to this protocol, and
the tenant never crosses it as something a model can write: it comes from `TenantContext`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from contracts.agent_api import Route, Usage

JsonDict = dict[str, Any]


@dataclass(frozen=True, slots=True)
class TenantContext:
    """The verified identity of a run: from the internal token, never from a model."""

    company_id: str
    user_id: str
    conversation_id: str


@dataclass(frozen=True, slots=True)
class Turn:
    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class RouteChoice:
    route: Route
    confidence: float
    reason: str
    refusal: str = ""
    """Set: the request is refused (read-only access, another company, a forecast, ...); this is
    the whole reply, streamed as it is, and no data is read."""


@dataclass(frozen=True, slots=True)
class SqlDraft:
    """One query to run; `note` is a short, user-safe line streamed on the sql_agent channel."""

    sql: str
    note: str = ""
    memory: JsonDict = field(default_factory=dict)
    """Provider-private state to keep for follow-ups (merged into the conversation's memory)."""


@dataclass(frozen=True, slots=True)
class Unanswerable:
    """The provider cannot turn the question into a query; `message` says so plainly."""

    message: str


@dataclass(frozen=True, slots=True)
class SqlAttempt:
    """A previous attempt in this run and why it failed (fed back to the model)."""

    sql: str
    error: str


@dataclass(frozen=True, slots=True)
class QueryResult:
    sql: str
    """The statement as written (before tenant rewriting): what users are shown."""
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    truncated: bool

    @property
    def row_count(self) -> int:
        return len(self.rows)


@dataclass(frozen=True, slots=True)
class Passage:
    doc_id: str
    title: str
    chunk_id: str
    text: str
    score: float


@dataclass(frozen=True, slots=True)
class SchemaTable:
    name: str
    description: str
    columns: tuple[tuple[str, str, str], ...]
    """(name, SQL type, description) of each column the SQL path may read; the tenant column is
    never listed."""


@dataclass(slots=True)
class UsageMeter:
    """Accumulates model usage over a run; the offline provider leaves it at zero."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, prompt: int, completion: int) -> None:
        self.prompt_tokens += prompt
        self.completion_tokens += completion

    def to_usage(self) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            total_tokens=self.prompt_tokens + self.completion_tokens,
        )


@dataclass(frozen=True, slots=True)
class AskContext:
    """Everything a provider may see for one step of one run."""

    question: str
    history: Sequence[Turn]
    memory: Mapping[str, Any]
    """What earlier turns left for follow-ups (provider memory, the last result, the last route)."""
    usage: UsageMeter
    deadline: float | None = None
    """When the run's total budget ends, in the event loop's clock (`loop.time()`); None: no
    limit. A provider's steps end by it with their own coded error, not the run's."""


class ModelProvider(Protocol):
    """The model behind the workflow's nodes."""

    name: str

    async def classify(self, ask: AskContext) -> RouteChoice:
        """Pick a route. Never streamed to the user."""
        ...

    async def draft_sql(
        self,
        ask: AskContext,
        schema: Sequence[SchemaTable],
        attempts: Sequence[SqlAttempt],
    ) -> SqlDraft | Unanswerable:
        """Write one read-only query over `schema`, knowing why earlier `attempts` failed."""
        ...

    def answer_from_rows(self, ask: AskContext, result: QueryResult) -> AsyncIterator[str]:
        """Stream an answer grounded in the rows (which are data, never instructions)."""
        ...

    def answer_from_passages(
        self, ask: AskContext, passages: Sequence[Passage]
    ) -> AsyncIterator[str]:
        """Stream an answer grounded in the passages, citing only those given."""
        ...

    def answer_plainly(self, ask: AskContext, message: str) -> AsyncIterator[str]:
        """Stream `message` (a refusal or a failure explained) as the reply."""
        ...

    def answer_generally(self, ask: AskContext) -> AsyncIterator[str]:
        """Stream a reply to a question on the `general` route (greetings, what it can do)."""
        ...
