"""Chat Completions calls sent with aiohttp: the streamed answer read as plain JSON chunks (the
answer's hot path), and the routing call's non-streamed request (`post_json`).

`ChatOpenAI.astream` costs about 300 µs of CPU per token: the SDK builds a pydantic model per
chunk, LangChain dumps it back to a dict, wraps it in message objects and adds every chunk to
the last (quadratic in the answer's length). Here the request body is still built by
`ChatOpenAI` (same payload, headers and base URL as every other step), but it is sent with
aiohttp: its C parser and plain stream reads cost a fraction of the SDK's httpx/h11/anyio path
per chunk and per request. The body is split into SSE events and each chunk is read with one
`orjson.loads` (a fifth of `json.loads`'s CPU on a typical chunk: 1.0 against 5.3 µs). The
silence allowed before the headers and between reads is one timer per stream
(`stall.StallDeadline`), not a timer per read.

Failures raise what the SDK would (`openai.APIStatusError` subclasses built by the SDK from the
status, `openai.APIError` for an error event, `TimeoutError` for a stall, aiohttp's connection
and payload errors for a lost connection, `ValueError` for unparsable chunks), so
`errors.classify_failure` maps them as before.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import openai
import orjson
import structlog
from langchain_core.messages import BaseMessage
from langchain_openai import ChatOpenAI
from langchain_openai._compat import httpx as sdk_httpx

from agent_service.providers.base import UsageMeter
from agent_service.providers.openai.errors import BadModelOutput
from agent_service.providers.openai.stall import StallDeadline

log = structlog.get_logger("agent_service.providers.openai.stream")

MAX_EVENT_BYTES = 8 * 1024 * 1024
"""An SSE event (or a line without an end) longer than this is a broken stream, not an answer."""
MAX_REPLY_BYTES = 8 * 1024 * 1024
"""A non-streamed reply (the routing call's) longer than this is broken, not an answer."""
MAX_ERROR_BYTES = 64 * 1024
"""How much of a refusal's body is read (for the SDK's error message)."""
DEFAULT_STALL_S = 60.0


def new_session(
    max_connections: int, connect_timeout_s: float | None, base_url: str
) -> aiohttp.ClientSession:
    """The model calls' connection pool (call inside the running loop; close it at shutdown)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=max_connections),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout_s),
        # the proxy the environment names, read once: aiohttp's trust_env reads the environment
        # and ~/.netrc in a worker thread on every request (an API key is the auth here)
        proxy=env_proxy(base_url),
        auto_decompress=False,  # identity is asked for: a compressed stream stalls in zlib
    )


def env_proxy(url: str) -> str | None:
    """The proxy `HTTP(S)_PROXY` names for `url`, None when there is none or `NO_PROXY` covers
    its host (as httpx and the SDK read them)."""
    parts = urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies_environment().get(parts.scheme)


@asynccontextmanager
async def _session_for(
    session: aiohttp.ClientSession | None, url: str
) -> AsyncIterator[aiohttp.ClientSession]:
    if session is not None:
        yield session
        return
    async with new_session(10, None, url) as own:  # a one-off call (tests): its own pool
        yield own


async def stream_text(
    chat: ChatOpenAI,
    messages: list[BaseMessage],
    usage: UsageMeter,
    *,
    include_usage: bool,
    session: aiohttp.ClientSession | None = None,
    stall_timeout_s: float | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> AsyncGenerator[str, None]:
    """The content deltas of one streamed call, in order; usage is added to `usage` as it comes.

    `stall_timeout_s`: the longest wait for the headers or the next bytes (else `TimeoutError`);
    None takes `chat`'s read timeout."""
    extra: dict[str, Any] = {"stream": True}
    if include_usage:
        extra["stream_options"] = {"include_usage": True}
    # ChatOpenAI's own payload: model, sampling, max tokens and message conversion stay its job
    payload = chat._get_request_payload(messages, **extra)
    client = chat.root_async_client
    url, headers = _target(client, "text/event-stream", extra_headers)
    body = _json_body(payload)
    stall = StallDeadline(stall_timeout_s or _read_timeout(client.timeout))
    loop = asyncio.get_running_loop()
    resp: aiohttp.ClientResponse | None = None
    finished = False
    try:
        async with _session_for(session, url) as http:
            resp = await _post(http, url, body, headers)
            if resp.status != 200:
                raise await _status_error(client, resp, url)
            content = resp.content
            buffer = b""
            data: list[bytes] = []
            done = False
            while True:
                stall.waiting_since = loop.time()
                block = await content.readany()
                if not block:
                    break
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
                        text = _chunk_text(orjson.loads(raw), usage, url)
                    except (AttributeError, TypeError, IndexError, KeyError) as exc:
                        # valid JSON of the wrong shape (`{"choices": "not-a-list"}`): as
                        # unusable as invalid JSON, and a coded error, never a traceback
                        raise BadModelOutput(f"a stream chunk of the wrong shape: {exc}") from None
                    if text:
                        stall.waiting_since = None  # the consumer's time is not silence
                        yield text
            finished = True
            resp.release()  # read to its end: the connection goes back to the pool
    except asyncio.CancelledError:
        if stall.fired() and stall.uncancel() == 0:
            raise TimeoutError(f"no bytes from the model for {stall.limit_s} s") from None
        raise
    finally:
        stall.cancel()
        if resp is not None and not finished:
            resp.close()  # stopped early: drop the connection, so the model stops generating


async def post_json(
    chat: ChatOpenAI,
    payload: Mapping[str, Any],
    *,
    session: aiohttp.ClientSession | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> Any:
    """One non-streamed Chat Completions call (`payload` built by `chat`), sent with aiohttp;
    the reply's JSON. Failures raise what the SDK would (see the module). No timeout of its own:
    the caller's step deadline bounds it (`attempts.Attempts.call`)."""
    client = chat.root_async_client
    url, headers = _target(client, "application/json", extra_headers)
    body = _json_body(payload)
    async with (
        _session_for(session, url) as http,
        await _post(http, url, body, headers) as resp,
    ):
        if resp.status != 200:
            raise await _status_error(client, resp, url)
        parts: list[bytes] = []
        size = 0
        while part := await resp.content.readany():  # to the end: read(n) stops at a segment
            size += len(part)
            if size > MAX_REPLY_BYTES:
                raise BadModelOutput(f"a reply longer than {MAX_REPLY_BYTES} bytes")
            parts.append(part)
        reply = b"".join(parts)
    try:
        return orjson.loads(reply)
    except ValueError:
        raise BadModelOutput("a reply that is not JSON") from None


def _json_body(payload: Mapping[str, Any]) -> bytes:
    """The request body: `payload` as compact UTF-8 JSON (keys that are not strings become
    strings, as `json.dumps` makes them)."""
    return orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS)


async def _post(
    http: aiohttp.ClientSession, url: str, body: bytes, headers: Mapping[str, str]
) -> aiohttp.ClientResponse:
    """POST `body`; once more on a fresh connection if a pooled one was gone before any reply.

    A server closes idle keep-alive connections on its own clock (uvicorn after 5 s); a request
    sent on one just as it closes fails with no reply at all. Any HTTP client resends then: no
    byte of an answer has reached anyone, and the step's own retry policy (`Attempts`) stays for
    failures of the model itself."""
    try:
        return await http.post(url, data=body, headers=headers)
    except aiohttp.ClientConnectorError:
        raise  # no connection was made (refused, unresolvable): nothing stale to replace
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
        log.info("model_connection_reset_before_reply", url=url)
        return await http.post(url, data=body, headers=headers)


def _target(
    client: openai.AsyncOpenAI, accept: str, extra_headers: Mapping[str, str] | None
) -> tuple[str, dict[str, str]]:
    """The URL and headers the SDK would send to (its base URL, key and default headers)."""
    headers = {
        k: v for k, v in {**client.default_headers, **client.auth_headers}.items() if type(v) is str
    }
    headers["Accept"] = accept
    headers["Accept-Encoding"] = "identity"
    if extra_headers:
        headers.update(extra_headers)  # the model call's `traceparent` when tracing is on
    return f"{client.base_url}chat/completions", headers


def _read_timeout(timeout: object) -> float:
    if isinstance(timeout, sdk_httpx.Timeout):
        return timeout.read or DEFAULT_STALL_S
    if isinstance(timeout, int | float):
        return float(timeout)
    return DEFAULT_STALL_S


async def _status_error(
    client: openai.AsyncOpenAI, resp: aiohttp.ClientResponse, url: str
) -> Exception:
    """The SDK's own exception for a refused call (`RateLimitError` for 429, ...)."""
    parts: list[bytes] = []
    size = 0
    while size < MAX_ERROR_BYTES and (part := await resp.content.readany()):
        parts.append(part)
        size += len(part)
    body = b"".join(parts)[:MAX_ERROR_BYTES]
    # Any: the SDK's own httpx (httpx2 under openai>=3), which mypy sees as httpx
    response: Any = sdk_httpx.Response(
        resp.status,
        headers=list(resp.headers.items()),
        content=body,
        request=sdk_httpx.Request("POST", url),
    )
    return client._make_status_error_from_response(response)


def _request(url: str) -> Any:
    return sdk_httpx.Request("POST", url)


def _chunk_text(chunk: Any, usage: UsageMeter, url: str) -> str | None:
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
            request=_request(url),
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
