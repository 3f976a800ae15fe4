"""Scripted behaviour: rules that match a request and the reply each one gives."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from fake_openai.knobs import Fault, Timing
from fake_openai.request import ChatRequest

FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]


class ScriptError(ValueError):
    """A script (file, JSON body or Python value) that cannot be used, and why."""


def _compile(pattern: str | None, what: str) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ScriptError(f"match.{what} is not a valid regular expression: {exc}") from None


@dataclass(frozen=True, slots=True)
class Match:
    """Conditions on a request; all that are set must hold. Substrings are case-sensitive.

    Use a regex with `(?i)` to match regardless of case.
    """

    last_user: str | None = None
    last_user_regex: str | None = None
    system: str | None = None
    system_regex: str | None = None
    any_message: str | None = None
    any_message_regex: str | None = None
    model: str | None = None
    model_regex: str | None = None
    has_tools: bool | None = None
    has_tool_choice: bool | None = None
    has_response_format: bool | None = None
    tool: str | None = None
    """A function of this name is offered in `tools`."""
    tool_results: int | None = None
    """Exactly this many `tool` messages are in the conversation."""
    min_tool_results: int | None = None
    stream: bool | None = None
    _regexes: dict[str, re.Pattern[str] | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for name in ("last_user_regex", "system_regex", "any_message_regex", "model_regex"):
            self._regexes[name] = _compile(getattr(self, name), name)

    def _search(self, name: str, text: str) -> bool:
        regex = self._regexes[name]
        return regex is None or regex.search(text) is not None

    def matches(self, request: ChatRequest) -> bool:
        """Whether every condition set on this match holds for `request`."""
        if self.model is not None and request.model != self.model:
            return False
        if not self._search("model_regex", request.model):
            return False
        if self.stream is not None and request.stream != self.stream:
            return False
        if self.has_tools is not None and bool(request.tools) != self.has_tools:
            return False
        if self.has_tool_choice is not None and (
            (request.tool_choice is not None) != self.has_tool_choice
        ):
            return False
        if self.has_response_format is not None and (
            (request.response_format is not None) != self.has_response_format
        ):
            return False
        if self.tool is not None and self.tool not in request.tool_names:
            return False
        if self.tool_results is not None and request.tool_results != self.tool_results:
            return False
        if self.min_tool_results is not None and request.tool_results < self.min_tool_results:
            return False
        if self.last_user is not None or self.last_user_regex is not None:
            text = request.last_user
            if self.last_user is not None and self.last_user not in text:
                return False
            if not self._search("last_user_regex", text):
                return False
        if self.system is not None or self.system_regex is not None:
            text = request.system
            if self.system is not None and self.system not in text:
                return False
            if not self._search("system_regex", text):
                return False
        if self.any_message is not None or self.any_message_regex is not None:
            texts = request.texts
            if self.any_message is not None and not any(self.any_message in t for t in texts):
                return False
            if self.any_message_regex is not None and not any(
                self._search("any_message_regex", t) for t in texts
            ):
                return False
        return True


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call in a reply; `arguments` is a JSON object or an already-encoded string."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """Answer with an HTTP error status and an OpenAI-shaped error body."""

    status: int = 500
    message: str = "The fake server was told to fail this request."
    type: str | None = None
    """Defaults by status: 429 → `requests`, 5xx → `server_error`, else `invalid_request_error`."""
    code: str | None = None
    retry_after: float | None = None
    """Seconds, sent as the `retry-after` header."""

    def __post_init__(self) -> None:
        if not 400 <= self.status <= 599:
            raise ScriptError(f"error.status must be an HTTP error status, got {self.status}")

    @property
    def error_type(self) -> str:
        """The `type` field of the error body."""
        if self.type is not None:
            return self.type
        if self.status == 429:
            return "requests"
        return "server_error" if self.status >= 500 else "invalid_request_error"


_UNSET: Any = object()


@dataclass(frozen=True, slots=True)
class Reply:
    """What a rule answers. Exactly one of content, filler, tool calls, JSON value or error.

    `tool_calls` may come with `content` spoken before the calls. A `json_value` adapts to the
    request: the JSON text as content when `response_format` is set, else a call to the forced or
    only tool (what `with_structured_output(method="function_calling")` expects), else content.
    """

    content: str | None = None
    filler_tokens: int | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    json_value: Any = _UNSET
    error: ErrorReply | None = None
    finish_reason: FinishReason | None = None
    """Override the natural finish reason (`stop`, or `tool_calls` when calling tools)."""

    def __post_init__(self) -> None:
        kinds = [
            self.filler_tokens is not None,
            bool(self.tool_calls),
            self.json_value is not _UNSET,
            self.error is not None,
        ]
        if sum(kinds) > 1 or (self.content is not None and sum(kinds) - kinds[1] > 0):
            raise ScriptError(
                "a reply has exactly one of content, filler_tokens, tool_calls (optionally with "
                "content), json or error"
            )
        if self.filler_tokens is not None and self.filler_tokens < 0:
            raise ScriptError(f"filler_tokens must be >= 0, got {self.filler_tokens}")

    @property
    def has_json(self) -> bool:
        """Whether this reply carries a structured-output JSON value."""
        return self.json_value is not _UNSET

    @classmethod
    def text(cls, content: str, *, finish_reason: FinishReason | None = None) -> Reply:
        """Answer with `content`."""
        return cls(content=content, finish_reason=finish_reason)

    @classmethod
    def filler(cls, tokens: int) -> Reply:
        """Answer with `tokens` tokens of deterministic prose."""
        return cls(filler_tokens=tokens)

    @classmethod
    def tools(cls, *calls: ToolCall, content: str | None = None) -> Reply:
        """Call these tools (several calls stream with index 0, 1, …)."""
        return cls(tool_calls=tuple(calls), content=content)

    @classmethod
    def json(cls, value: Any) -> Reply:
        """Answer with a structured-output value (see the class docstring)."""
        return cls(json_value=value)

    @classmethod
    def fail(
        cls,
        status: int,
        message: str = "The fake server was told to fail this request.",
        *,
        retry_after: float | None = None,
        code: str | None = None,
        type: str | None = None,
    ) -> Reply:
        """Answer with an HTTP error."""
        return cls(
            error=ErrorReply(
                status=status, message=message, retry_after=retry_after, code=code, type=type
            )
        )


@dataclass(frozen=True, slots=True)
class Rule:
    """When `match` holds, give `reply`, paced by `timing` and broken by `fault`.

    `times` is how often the rule may fire (1 = one-shot); `None` repeats forever.
    """

    reply: Reply
    match: Match = field(default_factory=Match)
    times: int | None = None
    timing: Timing | None = None
    fault: Fault | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if self.times is not None and self.times < 1:
            raise ScriptError(f"rule.times must be >= 1 or unset, got {self.times}")


DEFAULT_REPLY = Reply.text("This is a fake response.")


@dataclass(frozen=True, slots=True)
class Script:
    """Rules tried in order (first match wins), then `default`; `timing` applies to every rule."""

    rules: tuple[Rule, ...] = ()
    default: Rule = field(default_factory=lambda: Rule(reply=DEFAULT_REPLY, name="default"))
    timing: Timing | None = None


def select_rule(script: Script, uses: list[int], request: ChatRequest) -> Rule:
    """The first rule that matches and has uses left (counting this use), else the default."""
    for i, rule in enumerate(script.rules):
        if rule.times is not None and uses[i] >= rule.times:
            continue
        if rule.match.matches(request):
            uses[i] += 1
            return rule
    return script.default
