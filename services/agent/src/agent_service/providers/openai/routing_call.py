"""The routing call by function calling, without LangChain's runnable layers: the default classify.

`ChatOpenAI.with_structured_output(..., include_raw=True)` wraps one request in a runnable map, an
assign, a fallback and a parser, each with its own callback run (a quarter of the agent's CPU for
a short request in the profile, beside the request itself). Here the request is the one that
chain sends — `ChatOpenAI` builds the payload from the tools it binds, sent through its own SDK
client, so timeouts and SDK errors (mapped by `errors.classify_failure`) are unchanged — and the
first tool call is parsed into the schema directly. The `json_schema` and `json_mode` methods
keep LangChain's parsers (`OpenAIProvider`).
"""

from __future__ import annotations

import json
from typing import Any, Generic, Literal, TypeVar, cast

from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableBinding, RunnableSequence
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, ValidationError

from agent_service.providers.base import UsageMeter

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

    async def ainvoke(self, messages: list[BaseMessage], usage: UsageMeter) -> M | str:
        """The parsed answer, or why there is none (for the log)."""
        payload = self._chat._get_request_payload(messages, **self._kwargs)
        completion = await self._chat.root_async_client.chat.completions.create(**payload)
        if completion.usage is not None:
            usage.add(completion.usage.prompt_tokens, completion.usage.completion_tokens)
        if not completion.choices:
            return "no choices in the reply"
        for call in completion.choices[0].message.tool_calls or ():
            function = getattr(call, "function", None)
            if function is None or function.name != self._name:
                continue
            try:
                return self._schema.model_validate(json.loads(function.arguments or "{}"))
            except (ValueError, ValidationError) as exc:
                return f"{type(exc).__name__}: {str(exc)[:200]}"
        return f"no {self._name} tool call in the reply"
