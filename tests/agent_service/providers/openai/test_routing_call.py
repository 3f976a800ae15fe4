"""The routing call on raw replies: the tool call parsed into the schema, usage metered, every
malformed shape a reason (never a traceback), refusals and broken bodies raised as the SDK's; the
proxy the environment names, read once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp import web
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI
from support.servers import serve_aiohttp

from agent_service.providers.base import UsageMeter
from agent_service.providers.openai.errors import BadModelOutput
from agent_service.providers.openai.prompts import RouteDecision
from agent_service.providers.openai.routing_call import ToolCallParse
from agent_service.providers.openai.stream import env_proxy


@asynccontextmanager
async def reply_server(body: bytes, status: int = 200) -> AsyncIterator[tuple[str, list[Any]]]:
    """A server answering every chat call with `body`; yields its URL and the requests' JSON."""
    seen: list[Any] = []

    async def chat(request: web.Request) -> web.Response:
        seen.append(await request.json())
        return web.Response(body=body, status=status, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    async with serve_aiohttp(app) as url:
        yield f"{url}/v1", seen


def tool_reply(arguments: Any, name: str = "RouteDecision", **extra: Any) -> bytes:
    call = {"id": "c1", "type": "function", "function": {"name": name, "arguments": arguments}}
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    return json.dumps({"choices": [{"index": 0, "message": message}], **extra}).encode()


async def ask(url: str, usage: UsageMeter | None = None) -> RouteDecision | str:
    chat = ChatOpenAI(model="m", base_url=url, api_key="k", max_retries=0)
    return await ToolCallParse(chat, RouteDecision).ainvoke(
        [HumanMessage("how many jobs?")], usage or UsageMeter()
    )


async def test_the_tool_call_is_parsed_and_usage_metered() -> None:
    arguments = json.dumps({"route": "sql", "confidence": 0.9, "reason": "counts jobs"})
    usage = UsageMeter()
    body = tool_reply(arguments, usage={"prompt_tokens": 120, "completion_tokens": 9})
    async with reply_server(body) as (url, seen):
        decision = await ask(url, usage)
    assert decision == RouteDecision(route="sql", confidence=0.9, reason="counts jobs")
    assert (usage.prompt_tokens, usage.completion_tokens) == (120, 9)
    # the request is ChatOpenAI's: the schema offered as the one tool, and that tool required
    (request,) = seen
    assert request["model"] == "m"
    assert [t["function"]["name"] for t in request["tools"]] == ["RouteDecision"]
    assert request["tool_choice"]["function"]["name"] == "RouteDecision"
    assert "stream" not in request or request["stream"] is False


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[]", "not a JSON object"),
        (b'{"choices": []}', "no choices"),
        (b'{"choices": "many"}', "no choices"),
        (b'{"choices": [{"message": "hi"}]}', "no RouteDecision tool call"),
        (b'{"choices": [{"message": {"tool_calls": [7]}}]}', "no RouteDecision tool call"),
        (tool_reply("{}", name="Other"), "no RouteDecision tool call"),
        (tool_reply("{not json"), "JSONDecodeError"),
        (tool_reply({"route": "sql"}), "arguments of type dict"),
        (tool_reply(json.dumps({"route": "sql", "confidence": 3, "reason": "x"})), "between 0"),
    ],
)
async def test_a_malformed_reply_is_a_reason(body: bytes, reason: str) -> None:
    async with reply_server(body) as (url, _):
        result = await ask(url)
    assert isinstance(result, str) and reason in result


async def test_a_refused_call_raises_the_sdks_status_error() -> None:
    async with reply_server(b'{"error": {"message": "slow down"}}', status=429) as (url, _):
        with pytest.raises(openai.RateLimitError):
            await ask(url)


async def test_a_body_that_is_not_json_is_bad_model_output() -> None:
    async with reply_server(b"<html>gateway error</html>") as (url, _):
        with pytest.raises(BadModelOutput):
            await ask(url)


def test_the_environments_proxy_is_used_unless_no_proxy_covers_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert env_proxy("https://api.example.com/v1") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert env_proxy("https://api.example.com/v1") == "http://proxy.internal:3128"
    assert env_proxy("http://models.internal/v1") is None  # no HTTP_PROXY
    monkeypatch.setenv("NO_PROXY", "example.com")
    assert env_proxy("https://api.example.com/v1") is None


async def test_a_large_reply_is_read_to_its_end() -> None:
    # read(n) returns what one segment brought; the reply must be read whole before parsing
    reason = "x" * 300_000
    arguments = json.dumps({"route": "general", "confidence": 0.5, "reason": reason})
    async with reply_server(tool_reply(arguments)) as (url, _):
        decision = await ask(url)
    # a body cut at a segment would not parse (BadModelOutput); RouteDecision keeps a short reason
    assert isinstance(decision, RouteDecision) and decision.reason.startswith("xxx")


@asynccontextmanager
async def dropping_server(drops: int) -> AsyncIterator[str]:
    """Closes the first `drops` connections as soon as a request arrives (a keep-alive connection
    the server timed out just as it was reused), then answers like the model."""
    dropped = 0
    body = tool_reply(json.dumps({"route": "sql", "confidence": 0.9, "reason": "r"}))

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal dropped
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(next(v for k, v in _headers(head) if k == "content-length"))
        await reader.readexactly(length)
        if dropped < drops:
            dropped += 1
            writer.close()
            return
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.close()
        await server.wait_closed()


def _headers(head: bytes) -> list[tuple[str, str]]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return [
        (k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in lines) if k
    ]


async def test_a_connection_closed_before_any_reply_is_tried_once_more() -> None:
    async with dropping_server(1) as url:
        decision = await ask(url)
    assert isinstance(decision, RouteDecision) and decision.route == "sql"


async def test_a_second_closed_connection_is_the_models_failure() -> None:
    async with dropping_server(2) as url:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await ask(url)
