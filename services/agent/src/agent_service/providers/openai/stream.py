"""A streamed Chat Completions answer read as plain JSON chunks: the answer's hot path.

`ChatOpenAI.astream` costs about 300 µs of CPU per token: the SDK builds a pydantic model per
chunk, LangChain dumps it back to a dict, wraps it in message objects and adds every chunk to
the last (quadratic in the answer's length). Here the request is still built by `ChatOpenAI`
(same payload, client, timeouts, status errors as every other step) and sent through its own
SDK client, but the body is split into SSE events and each chunk is read with one `json.loads`.
Failures raise what the SDK raises (`openai.APIStatusError`, `openai.APIError` for an error
event, the SDK's httpx transport errors, `ValueError` for unparsable chunks), so
`openai_errors.classify_failure` maps them as before.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

import openai
from langchain_core.messages import BaseMessage
from langchain_openai import ChatOpenAI

from agent_service.providers.base import UsageMeter
from agent_service.providers.openai.errors import BadModelOutput

MAX_EVENT_BYTES = 8 * 1024 * 1024
"""An SSE event (or a line without an end) longer than this is a broken stream, not an answer."""


async def stream_text(
    chat: ChatOpenAI,
    messages: list[BaseMessage],
    usage: UsageMeter,
    *,
    include_usage: bool,
) -> AsyncGenerator[str, None]:
    """The content deltas of one streamed call, in order; usage is added to `usage` as it comes."""
    extra: dict[str, Any] = {"stream": True}
    if include_usage:
        extra["stream_options"] = {"include_usage": True}
    # ChatOpenAI's own payload: model, sampling, max tokens and message conversion stay its job
    payload = chat._get_request_payload(messages, **extra)
    completions = chat.root_async_client.chat.completions
    async with completions.with_streaming_response.create(**payload) as response:
        http = response.http_response
        buffer = b""
        data: list[bytes] = []
        done = False
        async for block in http.aiter_bytes():
            buffer = buffer + block if buffer else block
            if b"\n" not in buffer:
                if len(buffer) > MAX_EVENT_BYTES:
                    raise BadModelOutput("an SSE line longer than the limit")
                continue
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if line.endswith(b"\r"):
                    line = line[:-1]
                if line:
                    if line.startswith(b"data:"):
                        data.append(line[5:].lstrip(b" ") if len(line) > 5 else b"")
                        if len(data) > 1 and sum(map(len, data)) > MAX_EVENT_BYTES:
                            raise BadModelOutput("an SSE event longer than the limit")
                    continue  # `event:`, `id:`, comments: nothing the chat stream needs
                if not data:
                    continue
                # a blank line ends the event
                raw = data[0] if len(data) == 1 else b"\n".join(data)
                data = []
                if done:
                    continue  # read to the end so the connection can be reused
                if raw.startswith(b"[DONE]"):
                    done = True
                    continue
                try:
                    text = _chunk_text(json.loads(raw), usage, http.request)
                except (AttributeError, TypeError, IndexError, KeyError) as exc:
                    # valid JSON of the wrong shape (`{"choices": "not-a-list"}`): as unusable
                    # as invalid JSON, and a coded error, never a traceback
                    raise BadModelOutput(f"a stream chunk of the wrong shape: {exc}") from None
                if text:
                    yield text


def _chunk_text(chunk: Any, usage: UsageMeter, request: Any) -> str | None:
    """The content of one chunk (None if it has none); its usage is metered; error events raise."""
    if type(chunk) is not dict:
        raise BadModelOutput(f"a stream chunk that is not an object: {type(chunk).__name__}")
    if chunk.get("error"):
        error = chunk["error"]
        message = error.get("message") if isinstance(error, dict) else None
        raise openai.APIError(
            message
            if isinstance(message, str) and message
            else "An error occurred during streaming",
            request=request,
            body=error,
        )
    counted = chunk.get("usage")
    if counted:
        usage.add(counted.get("prompt_tokens") or 0, counted.get("completion_tokens") or 0)
    choices = chunk.get("choices")
    if not choices:
        return None
    delta = choices[0].get("delta")
    if not delta:
        return None
    content = delta.get("content")
    return content if type(content) is str else None
