"""Turn a rule's reply into a concrete completion for one request: text, calls, finish, usage."""

from __future__ import annotations

import json
from dataclasses import dataclass

from fake_openai.request import ChatRequest
from fake_openai.script import Reply
from fake_openai.tokens import count_message_tokens, count_tokens, filler_text, truncate_tokens


@dataclass(frozen=True, slots=True)
class CallOut:
    """A tool call as it goes on the wire."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Completion:
    """Everything a response says, independent of streaming or not."""

    content: str | None
    tool_calls: tuple[CallOut, ...]
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


def _encode_arguments(arguments: object) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def prompt_tokens(request: ChatRequest) -> int:
    """The deterministic prompt-token estimate for `request` (see `tokens.count_message_tokens`)."""
    extra = json.dumps(request.tools) if request.tools else ""
    return count_message_tokens(request.texts, extra=extra)


def build_completion(request: ChatRequest, reply: Reply, *, call_id_prefix: str) -> Completion:
    """Resolve `reply` against `request` (structured output, `max_tokens`) into a `Completion`."""
    content: str | None = reply.content
    calls = [
        CallOut(
            id=call.id or f"{call_id_prefix}_{i}",
            name=call.name,
            arguments=_encode_arguments(call.arguments),
        )
        for i, call in enumerate(reply.tool_calls)
    ]
    if reply.filler_tokens is not None:
        content = filler_text(reply.filler_tokens)
    if reply.has_json:
        encoded = json.dumps(reply.json_value)
        target = None if request.response_format is not None else request.forced_tool
        if target is None and request.response_format is None and len(request.tool_names) == 1:
            target = request.tool_names[0]
        if target is None:
            content = encoded
        else:
            calls = [CallOut(id=f"{call_id_prefix}_0", name=target, arguments=encoded)]
    finish = "tool_calls" if calls else "stop"
    if content is not None and request.max_tokens is not None and not calls:
        content, cut = truncate_tokens(content, request.max_tokens)
        if cut:
            finish = "length"
    if reply.finish_reason is not None:
        finish = reply.finish_reason
    used = count_tokens(content or "") + sum(
        count_tokens(c.name) + count_tokens(c.arguments) for c in calls
    )
    return Completion(
        content=content,
        tool_calls=tuple(calls),
        finish_reason=finish,
        prompt_tokens=prompt_tokens(request),
        completion_tokens=used,
    )
