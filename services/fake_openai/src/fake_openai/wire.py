"""OpenAI chat completions wire format, pre-encoded as bytes (no per-chunk model objects)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from fake_openai.completion import Completion
from fake_openai.knobs import Pace
from fake_openai.tokens import group_pieces

DONE = b"data: [DONE]\n\n"

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


_dumps_ascii = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode


def dumps(value: object) -> bytes:
    """Compact JSON as UTF-8 bytes, the way every body and frame here is encoded."""
    text = _dumps(value)
    try:
        return text.encode()
    except UnicodeEncodeError:
        # A lone surrogate (a scripted bad reply): UTF-8 cannot carry it, JSON spells it \ud800.
        return _dumps_ascii(value).encode()


def error_body(message: str, *, type: str, code: str | None, param: str | None = None) -> bytes:
    """The OpenAI error body: `{"error": {"message", "type", "param", "code"}}`."""
    return dumps({"error": {"message": message, "type": type, "param": param, "code": code}})


def usage_object(completion: Completion) -> dict[str, object]:
    """The `usage` object for a completion's token estimates."""
    return {
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "total_tokens": completion.prompt_tokens + completion.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


@dataclass(frozen=True, slots=True)
class Envelope:
    """The fields every chunk of one response repeats."""

    id: str
    created: int
    model: str
    system_fingerprint: str


def completion_body(completion: Completion, envelope: Envelope) -> bytes:
    """A non-streaming `chat.completion` body."""
    message: dict[str, object] = {
        "role": "assistant",
        "content": completion.content,
        "refusal": None,
        "annotations": [],
    }
    if completion.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in completion.tool_calls
        ]
    return dumps(
        {
            "id": envelope.id,
            "object": "chat.completion",
            "created": envelope.created,
            "model": envelope.model,
            "system_fingerprint": envelope.system_fingerprint,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": completion.finish_reason,
                }
            ],
            "usage": usage_object(completion),
        }
    )


class DeltaCache:
    """Encoded `{"content": piece}` deltas per (text, chunking), so repeated long replies are cheap.

    Bounded: it forgets everything once it holds `max_entries` texts.
    """

    def __init__(self, max_entries: int = 256) -> None:
        self._max_entries = max_entries
        self._entries: dict[tuple[str, int, int], list[tuple[bytes, int]]] = {}

    def content_deltas(self, text: str, pace: Pace) -> list[tuple[bytes, int]]:
        """Each content delta's JSON and token weight."""
        key = (text, pace.chunk_tokens, pace.chunk_chars)
        found = self._entries.get(key)
        if found is None:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
            found = [
                (b'{"content":' + dumps(piece) + b"}", weight)
                for piece, weight in group_pieces(
                    text, chunk_tokens=pace.chunk_tokens, chunk_chars=pace.chunk_chars
                )
            ]
            self._entries[key] = found
        return found


@dataclass(frozen=True, slots=True)
class Frame:
    """One SSE data frame and the tokens it carries (for pacing)."""

    data: bytes
    tokens: int


def stream_frames(
    completion: Completion,
    envelope: Envelope,
    *,
    include_usage: bool,
    pace: Pace,
    cache: DeltaCache,
) -> list[Frame]:
    """Every frame of a streamed response, `[DONE]` last.

    The first frame carries `role: assistant`; each tool call's first delta carries its id and
    name, later ones pieces of its arguments; a `delta: {}` frame carries the finish reason; with
    `include_usage`, a frame with empty `choices` carries the usage (the others: `usage: null`).
    """
    head = (
        b'data: {"id":'
        + dumps(envelope.id)
        + b',"object":"chat.completion.chunk","created":'
        + str(envelope.created).encode()
        + b',"model":'
        + dumps(envelope.model)
        + b',"system_fingerprint":'
        + dumps(envelope.system_fingerprint)
    )
    prefix = head + b',"choices":[{"index":0,"delta":'
    usage_null = b',"usage":null' if include_usage else b""
    suffix = b',"logprobs":null,"finish_reason":null}]' + usage_null + b"}\n\n"

    first = b'{"role":"assistant","content":' + (
        b'""' if completion.content is not None else b"null"
    )
    frames = [Frame(prefix + first + b',"refusal":null}' + suffix, 0)]
    if completion.content:
        frames.extend(
            Frame(prefix + delta + suffix, weight)
            for delta, weight in cache.content_deltas(completion.content, pace)
        )
    for index, call in enumerate(completion.tool_calls):
        opening = {
            "tool_calls": [
                {
                    "index": index,
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": ""},
                }
            ]
        }
        frames.append(Frame(prefix + dumps(opening) + suffix, 1))
        call_head = b'{"tool_calls":[{"index":' + str(index).encode() + b',"function":{"arguments":'
        frames.extend(
            Frame(prefix + call_head + dumps(piece) + b"}}]}" + suffix, weight)
            for piece, weight in group_pieces(
                call.arguments, chunk_tokens=pace.chunk_tokens, chunk_chars=pace.chunk_chars
            )
        )
    finish = (
        b',"logprobs":null,"finish_reason":'
        + dumps(completion.finish_reason)
        + b"}]"
        + usage_null
        + b"}\n\n"
    )
    frames.append(Frame(prefix + b"{}" + finish, 0))
    if include_usage:
        usage = head + b',"choices":[],"usage":' + dumps(usage_object(completion)) + b"}\n\n"
        frames.append(Frame(usage, 0))
    frames.append(Frame(DONE, 0))
    return frames


def error_frame(message: str, *, type: str, code: str | None) -> bytes:
    """An in-stream error, which `openai` raises as `APIError`."""
    return b"data: " + error_body(message, type=type, code=code) + b"\n\n"
