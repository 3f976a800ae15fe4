"""Models of the internal API: the chat request and the semantic event stream.

These are the wire shapes of `POST /internal/chat/stream` and friends. Every event's JSON carries
its own `event` name, so a decoder needs only the `data:` line. No UI concepts live here.
"""

from __future__ import annotations

import re
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

# Limits that are part of the contract (both tiers and every caller enforce the same numbers).
MAX_MESSAGE_CHARS: Final = 8_000
"""Longest accepted `input.message`, in characters (after stripping surrounding whitespace)."""
MAX_ID_CHARS: Final = 128
ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]*$"
"""Conversation, user and company ids: ASCII letters, digits and `_ . : @ -`, not starting with a
separator. Keeps ids safe to log, to use in keys and to show."""

Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_ID_CHARS, pattern=ID_PATTERN),
]
_UNSTORABLE: Final = re.compile(r"[\x00\ud800-\udfff]")


def _storable(text: str) -> str:
    # PostgreSQL text cannot hold NUL and UTF-8 cannot encode an unpaired surrogate (JSON's
    # "\ud800"): refused here, so both backends answer the same 422 instead of one failing late.
    if _UNSTORABLE.search(text):
        raise ValueError("the message must not contain NUL characters or unpaired surrogates")
    return text


Message = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_MESSAGE_CHARS),
    AfterValidator(_storable),
]

Route = Literal["sql", "rag", "general"]
Channel = Literal["classify", "sql_agent", "rag_agent", "final"]
Unanswered = Literal["no_query", "queries_failed", "no_passages", "refused"]
"""Why a run's answer says it could not answer (`RunStats.unanswered`)."""
CHANNELS: Final[frozenset[str]] = frozenset({"classify", "sql_agent", "rag_agent", "final"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChatInput(_Strict):
    message: Message


class ConversationContext(_Strict):
    """Who is asking, in which conversation. Must equal the identity in the internal token."""

    id: Identifier
    user_id: Identifier
    company_id: Identifier


class ChatRequest(_Strict):
    """Body of `POST /internal/chat/stream` and `POST /internal/chat`."""

    input: ChatInput
    conversation: ConversationContext


# --- events -------------------------------------------------------------------------------------


class RouteDecisionEvent(_Strict):
    event: Literal["route_decision"] = "route_decision"
    route: Route
    confidence: Annotated[float, Field(ge=0.0, le=1.0)]
    reason: str


class ToolStartEvent(_Strict):
    event: Literal["tool_start"] = "tool_start"
    tool: str
    call_id: str
    input: str | None = None
    """A short, safe-to-show description of what the tool was given (the SQL, the search query)."""


Cell = bool | int | float | str | None
"""One value of a result row as it travels: numbers stay numbers; dates, decimals and text are
strings (text cut to a documented length by the producer)."""


class ResultTable(_Strict):
    """The rows a data tool returned, capped for the event stream (what the user may see anyway:
    the run's own tenant-scoped result). `row_count` is how many the query returned; `rows` may hold
    fewer (`capped`)."""

    columns: list[str]
    rows: list[list[Cell]]
    row_count: int
    capped: bool = False


class ToolEndEvent(_Strict):
    event: Literal["tool_end"] = "tool_end"
    tool: str
    call_id: str
    status: Literal["ok", "error"]
    summary: str
    duration_ms: float
    table: ResultTable | None = None
    """A data tool's rows: the first `AGENT_SQL_EVENT_MAX_ROWS`, within `…_MAX_BYTES`."""
    input: str | None = None
    """What the tool was given, as in its `tool_start` (so a recorded call reads on its own)."""


class TokenEvent(_Strict):
    event: Literal["token"] = "token"
    channel: Channel
    content: str


class Usage(_Strict):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class Source(_Strict):
    """A document passage an answer drew on."""

    doc_id: str
    title: str
    chunk_id: str
    snippet: str = ""
    score: float | None = None


class RunStats(_Strict):
    run_id: str
    conversation_id: str
    route: Route | None
    tokens: int
    """Tokens streamed on the `final` channel."""
    ttft_ms: float | None
    """Time from the request to the first `final` token."""
    duration_ms: float
    usage: Usage | None = None
    sql: str | None = None
    row_count: int | None = None
    truncated: bool | None = None
    sources: list[Source] | None = None
    unanswered: Unanswered | None = None
    """Set when the answer says the question could not be answered, and why: `no_query` (no
    query was written for it), `queries_failed` (every query failed), `no_passages` (no policy
    passage matched), `refused` (a request the assistant does not carry out)."""


class CompleteEvent(_Strict):
    event: Literal["complete"] = "complete"
    stats: RunStats


class ErrorEvent(_Strict):
    event: Literal["error"] = "error"
    code: str
    """A stable code from `contracts.errors.ErrorCode`."""
    message: str
    """Safe to show to the end user."""
    retryable: bool = False


AgentEvent = Annotated[
    RouteDecisionEvent | ToolStartEvent | ToolEndEvent | TokenEvent | CompleteEvent | ErrorEvent,
    Field(discriminator="event"),
]
TerminalEvent = CompleteEvent | ErrorEvent
AGENT_EVENT_ADAPTER: Final[TypeAdapter[AgentEvent]] = TypeAdapter(AgentEvent)
EVENT_NAMES: Final[frozenset[str]] = frozenset(
    {"route_decision", "tool_start", "tool_end", "token", "complete", "error"}
)


# --- non-streaming and conversation endpoints ----------------------------------------------------


class ChatResponse(_Strict):
    """Body of a successful `POST /internal/chat`."""

    answer: str
    route: Route | None
    stats: RunStats
    tools: list[ToolEndEvent] = []


class ConversationSummary(_Strict):
    id: str
    title: str
    created_at: str
    updated_at: str
    message_count: int


class ConversationList(_Strict):
    conversations: list[ConversationSummary]


class HistoryMessage(_Strict):
    role: Literal["user", "assistant"]
    content: str
    route: Route | None = None
    sql: str | None = None
    row_count: int | None = None
    sources: list[Source] | None = None
    tools: list[ToolEndEvent] | None = None
    """The answer's tool calls as the live stream ended them (with their rows), oldest first."""
    created_at: str | None = None
    """When the message was recorded (ISO 8601, UTC); absent for messages recorded before."""
    stopped: bool | None = None
    """True for a partial answer whose run was stopped before it ended."""


class ConversationHistory(_Strict):
    id: str
    title: str
    messages: list[HistoryMessage]
