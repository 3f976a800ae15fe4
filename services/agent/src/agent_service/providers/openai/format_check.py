"""The start-up check of the structured-output method (`AGENT_MODEL_STARTUP_CHECK`): one request
of one token in the `AGENT_MODEL_STRUCTURED_OUTPUT` format, so a server that rejects the format
stops the service with a message naming it instead of failing every run."""

from __future__ import annotations

import asyncio

import structlog
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI
from openai.lib._parsing._completions import type_to_response_format_param
from pydantic import BaseModel

from agent_service.providers.openai.config import OpenAIConfig
from agent_service.providers.openai.errors import classify_failure
from agent_service.providers.openai.prompts import RouteDecision
from agent_service.providers.openai.routing_call import Method, format_kwargs

log = structlog.get_logger("agent_service.providers.openai.format_check")

FORMAT_WORDS = ("response_format", "json_schema", "tool", "function")
"""A refusal of the format names it (llama-cpp-python answers with a 500 naming the field);
anything else (a model name, `max_tokens`, an outage) is not this check's business."""


class StructuredOutputUnsupported(RuntimeError):
    """The model server rejects the configured structured-output method (at start-up)."""


async def probe_format(chat: ChatOpenAI, schema: type[BaseModel], method: Method) -> None:
    """One request of one output token in the structured-output format: raises the SDK's error
    when the server rejects the format (it checks the request before generating)."""
    kwargs = format_kwargs(chat, schema, method)
    if isinstance(kwargs.get("response_format"), type):
        # json_schema binds the class; the SDK's `parse` converts it like this when it sends
        kwargs["response_format"] = type_to_response_format_param(kwargs["response_format"])
    payload = chat._get_request_payload([HumanMessage("hello")], **kwargs)
    # `max_tokens`, which every OpenAI-compatible server reads (llama.cpp's ignores the newer
    # `max_completion_tokens` ChatOpenAI would send)
    payload.pop("max_completion_tokens", None)
    payload["max_tokens"] = 1
    await chat.root_async_client.chat.completions.create(**payload)


async def check_structured_output(chat: ChatOpenAI, config: OpenAIConfig) -> None:
    """Raise `StructuredOutputUnsupported` when the server rejects the configured method.

    A server that cannot be reached, is rate-limiting or times out is only logged: it may come up
    after this service.
    """
    method = config.structured_output
    try:
        async with asyncio.timeout(config.timeout_s):
            await probe_format(chat, RouteDecision, method)
    except Exception as exc:
        failure = classify_failure(exc)
        status = getattr(exc, "status_code", None)
        detail = failure.detail if failure is not None else ""
        refused = status in (400, 422, 500) and any(word in detail for word in FORMAT_WORDS)
        if not refused:
            log.warning("model_startup_check_skipped", method=method, error=repr(exc)[:300])
            return
        raise StructuredOutputUnsupported(
            f"AGENT_MODEL_STRUCTURED_OUTPUT={method}: the model server at {config.base_url} "
            f"rejected a request in this format (HTTP {status}: {detail[:300]}). Set "
            "AGENT_MODEL_STRUCTURED_OUTPUT to another of function_calling, json_schema, "
            "json_mode (docs/real-model.md lists what local servers support), or "
            "AGENT_MODEL_STARTUP_CHECK=false to skip this check."
        ) from None
    log.info("model_startup_check_ok", method=method)
