"""The routing call by function calling, without LangChain's runnable layers: the default classify.

`ChatOpenAI.with_structured_output(..., include_raw=True)` wraps one request in a runnable map, an
assign, a fallback and a parser, each with its own callback run (a quarter of the agent's CPU for
a short request in the profile, beside the request itself). Here the request is the one that
chain sends — `ChatOpenAI` builds the payload from the tools it binds — posted with aiohttp
(`stream.post_json`: the SDK's request building, httpx and response models were a fifth of the
agent's samples for a short request), raising the SDK's own errors, so `errors.classify_failure`
maps them as before. The first tool call is parsed into the schema directly. The `json_schema`
and `json_mode` methods keep LangChain's parsers (`OpenAIProvider`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Generic, Literal, TypeVar, cast

import aiohttp
from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableBinding, RunnableSequence
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, ValidationError

from agent_service.providers.base import UsageMeter
from agent_service.providers.openai.stream import post_json

M = TypeVar("M", bound=BaseModel)
Method = Literal["function_calling", "json_schema", "json_mode"]


def format_kwargs(chat: ChatOpenAI, schema: type[BaseModel], method: Method) -> dict[str, Any]:
    """The request fields (`tools` and `tool_choice`, or `response_format`) that
    `with_structured_output(schema, method=method)` adds to each request."""
    chain = cast(RunnableSequence[Any, Any], chat.with_structured_output(schema, method=method))
    binding = cast(RunnableBinding[Any, Any], chain.first)
    # ls_* are tracing only
    return {k: v for k, v in binding.kwargs.items() if not k.startswith("ls_")}


class ToolCallParse(Generic[M]):
    """One non-streamed call that must answer by calling the schema's tool; `None` if it did not."""

    def __init__(self, chat: ChatOpenAI, schema: type[M]) -> None:
        # tools, tool_choice and parallel_tool_calls, as the chain binds them
        self._kwargs = format_kwargs(chat, schema, "function_calling")
        self._chat = chat
        self._schema = schema
        self._name = schema.__name__

    async def ainvoke(
        self,
        messages: list[BaseMessage],
        usage: UsageMeter,
        session: aiohttp.ClientSession | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> M | str:
        """The parsed answer, or why there is none (for the log)."""
        payload = self._chat._get_request_payload(messages, **self._kwargs)
        reply = await post_json(self._chat, payload, session=session, extra_headers=headers)
        if type(reply) is not dict:
            return "a reply that is not a JSON object"
        counted = reply.get("usage")
        if type(counted) is dict:
            usage.add(_count(counted, "prompt_tokens"), _count(counted, "completion_tokens"))
        choices = reply.get("choices")
        if not choices or type(choices) is not list or type(choices[0]) is not dict:
            return "no choices in the reply"
        message = choices[0].get("message")
        calls = message.get("tool_calls") if type(message) is dict else None
        for call in calls if type(calls) is list else ():
            function = call.get("function") if type(call) is dict else None
            if type(function) is not dict or function.get("name") != self._name:
                continue
            arguments = function.get("arguments") or "{}"
            try:
                if type(arguments) is not str:
                    raise ValueError(f"arguments of type {type(arguments).__name__}")
                return self._schema.model_validate(json.loads(arguments))
            except (ValueError, ValidationError) as exc:
                return f"{type(exc).__name__}: {str(exc)[:200]}"
        return f"no {self._name} tool call in the reply"


def _count(usage: dict[str, Any], key: str) -> int:
    value = usage.get(key)
    return value if type(value) is int else 0
