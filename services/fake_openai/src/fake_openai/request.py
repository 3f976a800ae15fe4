"""The parts of a chat completions request the fake server reads, parsed once per request."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

JsonDict = dict[str, Any]


class RequestError(Exception):
    """A request the real API would refuse; rendered as an OpenAI error body."""

    def __init__(
        self, message: str, *, status: int = 400, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.param = param
        self.code = code


def message_text(message: JsonDict) -> str:
    """The text of a message: its string content, or its text parts joined."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A validated request body and the views of it that rules match on."""

    body: JsonDict
    model: str
    messages: list[JsonDict]
    stream: bool
    include_usage: bool
    tools: list[JsonDict]
    tool_choice: Any
    response_format: JsonDict | None
    max_tokens: int | None

    @property
    def texts(self) -> list[str]:
        """Each message's text, in order."""
        return [message_text(m) for m in self.messages]

    @property
    def last_user(self) -> str:
        """The text of the last `user` message, or "" when there is none."""
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return message_text(message)
        return ""

    @property
    def system(self) -> str:
        """The text of every `system`/`developer` message, joined by newlines."""
        return "\n".join(
            message_text(m) for m in self.messages if m.get("role") in ("system", "developer")
        )

    @property
    def tool_results(self) -> int:
        """How many `tool` messages (results of earlier tool calls) the conversation holds."""
        return sum(1 for m in self.messages if m.get("role") == "tool")

    @property
    def tool_names(self) -> list[str]:
        """The names of the functions offered in `tools`."""
        names = []
        for tool in self.tools:
            function = tool.get("function")
            if isinstance(function, dict) and isinstance(function.get("name"), str):
                names.append(function["name"])
        return names

    @property
    def forced_tool(self) -> str | None:
        """The function `tool_choice` forces, if it names one (or `required` with a single tool)."""
        choice = self.tool_choice
        if isinstance(choice, dict):
            function = choice.get("function")
            if isinstance(function, dict) and isinstance(function.get("name"), str):
                return str(function["name"])
        if choice in ("required", "any") and len(self.tool_names) == 1:
            return self.tool_names[0]
        return None


def parse_chat_request(raw: bytes, *, default_model: str) -> ChatRequest:
    """Validate a request body; unknown fields are accepted and ignored."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise RequestError("The request body must be a JSON object.")
    messages = body.get("messages")
    if messages is None:
        raise RequestError("Missing required parameter: 'messages'.", param="messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty array.", param="messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise RequestError(
                f"'messages[{i}]' must be an object with a string 'role'.", param=f"messages[{i}]"
            )
    model = body.get("model", default_model)
    if not isinstance(model, str) or not model:
        raise RequestError("'model' must be a non-empty string.", param="model")
    stream = body.get("stream", False)
    if not isinstance(stream, bool) and stream is not None:
        raise RequestError("'stream' must be a boolean.", param="stream")
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    tools = body.get("tools") or []
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise RequestError("'tools' must be an array of objects.", param="tools")
    response_format = body.get("response_format")
    if response_format is not None and not isinstance(response_format, dict):
        raise RequestError("'response_format' must be an object.", param="response_format")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (
        not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1
    ):
        raise RequestError("'max_tokens' must be a positive integer.", param="max_tokens")
    return ChatRequest(
        body=body,
        model=model,
        messages=messages,
        stream=bool(stream),
        include_usage=include_usage,
        tools=tools,
        tool_choice=body.get("tool_choice"),
        response_format=response_format,
        max_tokens=max_tokens,
    )
