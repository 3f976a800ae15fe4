"""The in-process runner: a free port, a clear error for a taken one, and hangs released at exit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from fake_openai import Fault, Reply, Rule, Script, running_fake_openai


async def _drain(parts: AsyncIterator[bytes]) -> None:
    async for _ in parts:
        pass


async def test_a_taken_port_is_a_plain_os_error() -> None:
    async with running_fake_openai() as fake:
        assert fake.base_url == f"http://127.0.0.1:{fake.port}/v1"
        with pytest.raises(OSError, match="already in use"):
            async with running_fake_openai(port=fake.port):
                pass


async def test_exit_releases_a_hung_stream_and_breaks_it_for_the_client() -> None:
    script = Script(default=Rule(reply=Reply.text("a b c"), fault=Fault("hang", 1)))
    body = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
    async with httpx.AsyncClient(timeout=10) as client:
        async with running_fake_openai(script) as fake:
            request = client.build_request("POST", f"{fake.base_url}/chat/completions", json=body)
            response = await client.send(request, stream=True)
            parts = response.aiter_bytes()
            first = await anext(parts)
            assert first.startswith(b'data: {"id":')
            assert fake.state.active_responses == 1
            reader = asyncio.create_task(_drain(parts))
        # Leaving the block did not wait out the hang; the client's read now fails.
        with pytest.raises(httpx.RemoteProtocolError):
            await reader
        await response.aclose()
