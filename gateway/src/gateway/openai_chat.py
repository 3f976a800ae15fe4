"""The OpenAI Chat Completions dialect: its request, its answers, and the pure mapping from the
agent's semantic events to `chat.completion.chunk`s.

Only the answer travels (`delta.content`); route decisions, tool calls and reasoning are left
out, so a strict client never sees a field it does not know. Errors are OpenAI's
`{"error": {"message", "type", "code", "param"}}`, with the gateway's stable codes.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Final, Literal, NotRequired

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict

from contracts.agent_api import (
    MAX_MESSAGE_CHARS,
    AgentEvent,
    CompleteEvent,
    ErrorEvent,
    Identifier,
    RunStats,
    TokenEvent,
)
from gateway.errors import GatewayError, InvalidRequest

CONVERSATION_HEADER: Final = "X-Conversation-ID"
DERIVED_PREFIX: Final = "oai-"
ERROR_TYPES: Final[dict[int, str]] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
}
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class CompletionUsage(TypedDict):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class CompletionMessage(TypedDict):
    role: Literal["assistant"]
    content: str
    refusal: None


class CompletionChoice(TypedDict):
    index: int
    message: CompletionMessage
    logprobs: None
    finish_reason: Literal["stop"]


class ChatCompletion(TypedDict):
    """A non-streamed answer; `conversation_id` is this gateway's extension."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: CompletionUsage
    conversation_id: str


class ChunkDelta(TypedDict, total=False):
    role: Literal["assistant"]
    content: str


class ChunkChoice(TypedDict):
    index: int
    delta: ChunkDelta
    logprobs: None
    finish_reason: Literal["stop"] | None


class ChatCompletionChunk(TypedDict):
    """One streamed piece; the first carries `conversation_id` (extension), the last `usage`
    when `stream_options.include_usage` asked for it (with no choices)."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: NotRequired[CompletionUsage]
    conversation_id: NotRequired[str]


class OpenAIModel(TypedDict):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(TypedDict):
    object: Literal["list"]
    data: list[OpenAIModel]


class OpenAIError(TypedDict):
    message: str
    type: str
    code: str
    param: None
    request_id: NotRequired[str]


class OpenAIErrorBody(TypedDict):
    """Every refusal of the `/v1` routes, and the chunk that ends a failed stream."""

    error: OpenAIError


StreamItem = ChatCompletionChunk | OpenAIErrorBody


class ContentPart(BaseModel):
    """One part of a message's content; only text parts are read."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    """A message of the request's conversation."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        """The message's text (its text parts joined)."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text or "" for part in self.content if part.type == "text")


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """The body of `POST /v1/chat/completions`. Sampling settings (`temperature`, `max_tokens`,
    `tools`, ...) are accepted and ignored: the assistant decides how it answers."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    model: str
    messages: list[ChatMessage] = Field(min_length=1, max_length=1000)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: Literal[1] = 1
    conversation_id: Identifier | None = None
    """Extension: the conversation this turn belongs to (see `conversation_id_of`)."""


def question_of(body: ChatCompletionRequest) -> str:
    """The last user message's text: what this turn asks."""
    for message in reversed(body.messages):
        if message.role == "user":
            text = message.text().strip()
            if not text:
                raise InvalidRequest("The last user message has no text.")
            if len(text) > MAX_MESSAGE_CHARS:
                raise InvalidRequest(f"The message is longer than {MAX_MESSAGE_CHARS} characters.")
            return text
    raise InvalidRequest("The request has no user message.")


def conversation_id_of(body: ChatCompletionRequest, header: str | None) -> str:
    """The conversation of a request: the `conversation_id` field, else the `X-Conversation-ID`
    header, else one derived from the conversation's opening (its system prompt and first user
    message), so every turn of one chat reaches the same conversation and its history."""
    if body.conversation_id:
        return body.conversation_id
    if header:
        return header  # validated as an Identifier where the run is built
    first_user = next((m.text() for m in body.messages if m.role == "user"), "")
    system = "".join(m.text() for m in body.messages if m.role in ("system", "developer"))
    digest = hashlib.sha256(_dumps([system, first_user]).encode()).hexdigest()
    return DERIVED_PREFIX + digest[:32]


def usage_of(stats: RunStats) -> CompletionUsage:
    """OpenAI's `usage` from a run's stats (the answer's token count when the model gave none)."""
    usage = stats.usage
    if usage is not None and usage.total_tokens:
        return {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        }
    return {"prompt_tokens": 0, "completion_tokens": stats.tokens, "total_tokens": stats.tokens}


def new_completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def completion(
    answer: str, stats: RunStats, *, model: str, completion_id: str, conversation_id: str
) -> ChatCompletion:
    """A non-streamed `chat.completion` (plus the `conversation_id` extension)."""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": usage_of(stats),
        "conversation_id": conversation_id,
    }


def model_list(model: str) -> ModelList:
    """`GET /v1/models`: the one model this gateway answers as."""
    return {
        "object": "list",
        "data": [{"id": model, "object": "model", "created": 0, "owned_by": "agent-chat"}],
    }


def error_body(
    status: int, code: str, message: str, request_id: str | None = None
) -> OpenAIErrorBody:
    """An error in the shape the OpenAI SDKs parse."""
    kind = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    error: OpenAIError = {"message": message, "type": kind, "code": code, "param": None}
    if request_id is not None:
        error["request_id"] = request_id
    return {"error": error}


def gateway_error_body(error: GatewayError, request_id: str | None) -> OpenAIErrorBody:
    """A gateway refusal in OpenAI's shape."""
    return error_body(error.status, error.code, error.message, request_id)


# --- streaming ---


@dataclass(slots=True)
class ChunkState:
    """What the chunk mapping remembers across one run's events."""

    completion_id: str
    model: str
    conversation_id: str
    include_usage: bool = False
    created: int = field(default_factory=lambda: int(time.time()))
    finished: bool = False


def _chunk(
    state: ChunkState, delta: ChunkDelta, finish_reason: Literal["stop"] | None = None
) -> ChatCompletionChunk:
    return {
        "id": state.completion_id,
        "object": "chat.completion.chunk",
        "created": state.created,
        "model": state.model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }


def opening_chunks(state: ChunkState) -> list[StreamItem]:
    """The first chunk: the assistant's role (and the `conversation_id` extension)."""
    first = _chunk(state, {"role": "assistant", "content": ""})
    first["conversation_id"] = state.conversation_id
    return [first]


def to_chunks(event: AgentEvent, state: ChunkState) -> list[StreamItem]:
    """Map one semantic event to the chunks it becomes; nothing after the run ends."""
    if state.finished:
        return []
    if type(event) is TokenEvent:
        if event.channel != "final" or not event.content:
            return []
        return [_chunk(state, {"content": event.content})]
    if isinstance(event, CompleteEvent):
        state.finished = True
        out: list[StreamItem] = [_chunk(state, {}, "stop")]
        if state.include_usage:
            last = _chunk(state, {})
            last["choices"] = []
            last["usage"] = usage_of(event.stats)
            out.append(last)
        return out
    if isinstance(event, ErrorEvent):
        # The SDKs raise `APIError` on a chunk that carries `error`.
        state.finished = True
        return [error_body(502, event.code, event.message)]
    return []


def chunk_frame(chunk: StreamItem) -> bytes:
    """One chunk as an SSE `data:` frame."""
    return b"data: " + _dumps(chunk).encode() + b"\n\n"
