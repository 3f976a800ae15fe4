"""The lean answer reader on raw bytes: SSE framing however it is cut, errors as the SDK's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import openai
import pytest
from aiohttp import web
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI
from support.servers import serve_aiohttp

from agent_service.providers.base import UsageMeter
from agent_service.providers.openai.stream import stream_text


@asynccontextmanager
async def raw_server(pieces: Sequence[bytes], status: int = 200) -> AsyncIterator[str]:
    """A server answering every chat call with exactly these bytes, one write (and yield) each."""

    async def chat(request: web.Request) -> web.StreamResponse:
        await request.read()
        if status != 200:
            return web.json_response({"error": {"message": "slow down"}}, status=status)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for piece in pieces:
            await resp.write(piece)
            await asyncio.sleep(0.001)  # separate reads on the client
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    async with serve_aiohttp(app) as url:
        yield f"{url}/v1"


async def read_all(base_url: str, usage: UsageMeter) -> list[str]:
    chat = ChatOpenAI(model="m", base_url=base_url, api_key="k", max_retries=0)
    out = []
    async for piece in stream_text(chat, [HumanMessage("hi")], usage, include_usage=True):
        out.append(piece)
    return out


def chunk(content: str) -> bytes:
    return ('{"choices":[{"index":0,"delta":{"content":"' + content + '"}}]}').encode()


async def test_pieces_come_through_however_the_bytes_are_cut() -> None:
    body = (
        b": a comment\r\n"
        b"event: message\r\ndata: " + chunk("Hel") + b"\r\n\r\n"
        b"data:" + chunk("lo,") + b"\n\n"
        b'data: {"choices":[{"index":0,"delta":{"role":"assistant"}}]}\n\n'
        b"data: " + chunk(" world") + b"\n\n"
        b'data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}\n\n'
        b"data: [DONE]\n\n"
    )
    for size in (1, 3, 7, len(body)):
        usage = UsageMeter()
        pieces = [body[i : i + size] for i in range(0, len(body), size)]
        async with raw_server(pieces) as url:
            assert await read_all(url, usage) == ["Hel", "lo,", " world"]
        assert (usage.prompt_tokens, usage.completion_tokens) == (7, 3)


async def test_an_error_event_raises_the_sdks_api_error() -> None:
    body = b"data: " + chunk("a") + b'\n\ndata: {"error":{"message":"overloaded"}}\n\n'
    async with raw_server([body]) as url:
        with pytest.raises(openai.APIError, match="overloaded"):
            await read_all(url, UsageMeter())


async def test_an_unparsable_chunk_is_a_value_error() -> None:
    async with raw_server([b"data: {not json\n\n"]) as url:
        with pytest.raises(ValueError, match="expected a string key"):
            await read_all(url, UsageMeter())


async def test_a_refused_call_raises_the_sdks_status_error() -> None:
    async with raw_server([], status=429) as url:
        with pytest.raises(openai.RateLimitError):
            await read_all(url, UsageMeter())
