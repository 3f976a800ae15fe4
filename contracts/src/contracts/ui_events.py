"""The gateway's public UI event union: what browsers receive over SSE and over WebSocket.

The same JSON objects travel on both transports (`POST /api/chat/stream` frames each as
`event: <type>` + `data: <json>`; `/ws/chat` sends one per text frame). Every object carries its
`type`. The WebSocket-only control messages (auth, pong) and the messages a WebSocket client may
send are at the end. The shapes are a superset of the seed WebSocket protocol (`progress`, `token`,
`complete` with `response`/`session_id`/`metadata`, `error` with `error`/`code`), so clients written
for it keep working. See docs/public-api.md.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from contracts.agent_api import Identifier, Message, ResultTable, Route, RunStats, Source


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


ProgressStep = Literal["starting", "agent_routing", "querying_data", "rag_retrieval", "generating"]
"""Steps of a run as a user sees them (the seed's names plus `querying_data`)."""
ReasoningChannel = Literal["classify", "sql_agent", "rag_agent"]


class StartUiEvent(_Event):
    """First event of every run: the conversation (generated if the client sent none)."""

    type: Literal["start"] = "start"
    conversation_id: str
    session_id: str
    """Same as `conversation_id` (the seed protocol's name)."""
    message_id: str
    request_id: str | None = None


class ProgressUiEvent(_Event):
    """What the agent is doing now; `message` is a label to show as is."""

    type: Literal["progress"] = "progress"
    step: ProgressStep
    message: str


class RouteUiEvent(_Event):
    type: Literal["route"] = "route"
    route: Route
    confidence: float
    reason: str
    label: str


class ToolStartUiEvent(_Event):
    type: Literal["tool_start"] = "tool_start"
    call_id: str
    tool: str
    label: str
    input: str | None = None


class ToolEndUiEvent(_Event):
    type: Literal["tool_end"] = "tool_end"
    call_id: str
    tool: str
    status: Literal["ok", "error"]
    summary: str
    duration_ms: float
    table: ResultTable | None = None
    """A data tool's rows (capped by the agent): show them as a table."""


class ReasoningUiEvent(_Event):
    """Status or working text of an agent step (not part of the answer)."""

    type: Literal["reasoning"] = "reasoning"
    channel: ReasoningChannel
    token: str


class TokenUiEvent(_Event):
    """A piece of the final answer; append `token` to the answer shown."""

    type: Literal["token"] = "token"
    token: str
    partial_response: str | None = None
    """WebSocket only, when the client asked for it with `"partial_response": true`."""


class SourcesUiEvent(_Event):
    type: Literal["sources"] = "sources"
    sources: list[Source]


class SqlUiEvent(_Event):
    """The SQL a data answer ran, with its row count."""

    type: Literal["sql"] = "sql"
    sql: str
    row_count: int | None = None
    truncated: bool | None = None


class CompleteMetadata(_Event):
    agent: str
    """The agent that answered: `sql_agent`, `rag_agent` or `general` (the seed's field)."""
    route: Route | None
    confidence: float | None = None
    context: dict[str, list[str]] = {}
    """`{"sources": [titles]}` when documents were used."""
    sql: str | None = None
    row_count: int | None = None


class CompleteUiEvent(_Event):
    """Last event of a successful run."""

    type: Literal["complete"] = "complete"
    response: str
    """The whole answer (the concatenated `token` events)."""
    conversation_id: str
    session_id: str
    metadata: CompleteMetadata
    stats: RunStats


class ErrorUiEvent(_Event):
    """Last event of a failed run (or a refused WebSocket message); `code` is stable."""

    type: Literal["error"] = "error"
    code: str
    error: str
    """Safe to show (the seed protocol's name); `message` holds the same text."""
    message: str
    retryable: bool = False
    retry_after: float | None = None
    """Seconds to wait before retrying (rate limits)."""


UiEvent = Annotated[
    StartUiEvent
    | ProgressUiEvent
    | RouteUiEvent
    | ToolStartUiEvent
    | ToolEndUiEvent
    | ReasoningUiEvent
    | TokenUiEvent
    | SourcesUiEvent
    | SqlUiEvent
    | CompleteUiEvent
    | ErrorUiEvent,
    Field(discriminator="type"),
]
UI_EVENT_ADAPTER: Final[TypeAdapter[UiEvent]] = TypeAdapter(UiEvent)


# --- WebSocket control messages -------------------------------------------------------------------


class AuthUser(_Event):
    id: str
    company_id: str


class AuthSuccessMessage(_Event):
    type: Literal["auth_success"] = "auth_success"
    message: str = "Authentication successful"
    user: AuthUser


class AuthErrorMessage(_Event):
    type: Literal["auth_error"] = "auth_error"
    message: str
    code: str = "UNAUTHORIZED"


class PongMessage(_Event):
    type: Literal["pong"] = "pong"


class PingMessage(_Event):
    """Sent during idle stretches of a turn (browsers cannot see protocol pings); ignore it."""

    type: Literal["ping"] = "ping"


WsServerMessage = Annotated[
    StartUiEvent
    | ProgressUiEvent
    | RouteUiEvent
    | ToolStartUiEvent
    | ToolEndUiEvent
    | ReasoningUiEvent
    | TokenUiEvent
    | SourcesUiEvent
    | SqlUiEvent
    | CompleteUiEvent
    | ErrorUiEvent
    | AuthSuccessMessage
    | AuthErrorMessage
    | PongMessage
    | PingMessage,
    Field(discriminator="type"),
]
WS_SERVER_MESSAGE_ADAPTER: Final[TypeAdapter[WsServerMessage]] = TypeAdapter(WsServerMessage)


class _ClientMessage(BaseModel):
    # Clients written for the seed protocol send extra fields (customer_id); ignore them.
    model_config = ConfigDict(extra="ignore", frozen=True)


class WsAuthMessage(_ClientMessage):
    type: Literal["auth"]
    token: str


class WsChatMessage(_ClientMessage):
    type: Literal["message"]
    message: Message
    """The same limits as the internal request's (stripped, 1..8000 characters)."""
    session_id: Identifier | None = None
    """The conversation to continue (the seed protocol's name); `conversation_id` also works."""
    conversation_id: Identifier | None = None
    partial_response: bool = False


class WsPingMessage(_ClientMessage):
    type: Literal["ping"]


class WsStopMessage(_ClientMessage):
    type: Literal["stop"]


class WsResumeMessage(_ClientMessage):
    """Rejoin a run after a lost connection: its UI events after the first `after` of them."""

    type: Literal["resume"]
    run_id: Annotated[str, Field(min_length=1, max_length=128)]
    """The run's id: the `message_id` of its `start` event."""
    after: Annotated[int, Field(ge=0, le=10_000_000)] = 0
    """How many of the run's events the client already received (0: all of them again)."""


WsClientMessage = Annotated[
    WsAuthMessage | WsChatMessage | WsPingMessage | WsStopMessage | WsResumeMessage,
    Field(discriminator="type"),
]
WS_CLIENT_MESSAGE_ADAPTER: Final[TypeAdapter[WsClientMessage]] = TypeAdapter(WsClientMessage)


class WsErrorCode:
    """WebSocket-only error codes kept from the seed protocol (the rest are `ErrorCode`s)."""

    AUTH_REQUIRED: Final = "AUTH_REQUIRED"
    EMPTY_MESSAGE: Final = "EMPTY_MESSAGE"
