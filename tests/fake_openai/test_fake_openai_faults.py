"""Injected errors, broken streams, hangs and client disconnects, as a real client sees them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, cast

import httpx
import openai
import pytest
from langchain_core.messages import BaseMessageChunk
from langchain_openai import ChatOpenAI

from fake_openai import Fault, Reply, Rule, Script, Timing, running_fake_openai


def _model(base_url: str, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(base_url=base_url, api_key="test", model="gpt-fake", max_retries=0, **kwargs)


async def _drain(stream: AsyncIterator[BaseMessageChunk], into: list[str]) -> None:
    async for chunk in stream:
        into.append(str(chunk.content))


def _only(rule: Rule) -> Script:
    return Script(default=rule)


async def test_429_surfaces_as_rate_limit_error_with_retry_after() -> None:
    script = _only(Rule(reply=Reply.fail(429, "Slow down.", retry_after=2)))
    async with running_fake_openai(script) as fake:
        with pytest.raises(openai.RateLimitError) as caught:
            await _model(fake.base_url).ainvoke("hi")
        with pytest.raises(openai.RateLimitError):
            [c async for c in _model(fake.base_url).astream("hi")]
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.body == {
        "message": "Slow down.",
        "type": "requests",
        "param": None,
        "code": None,
    }


@pytest.mark.parametrize(
    ("status", "error"),
    [(500, openai.InternalServerError), (503, openai.InternalServerError)],
)
async def test_5xx_surfaces_as_server_error(status: int, error: type[Exception]) -> None:
    async with running_fake_openai(_only(Rule(reply=Reply.fail(status)))) as fake:
        with pytest.raises(error) as caught:
            await _model(fake.base_url).ainvoke("hi")
    assert getattr(caught.value, "status_code", None) == status


async def test_retry_after_lets_the_client_retry_into_the_next_rule() -> None:
    script = Script(
        rules=(Rule(reply=Reply.fail(429, retry_after=0), times=1),),
        default=Rule(reply=Reply.text("second time lucky")),
    )
    async with running_fake_openai(script) as fake:
        model = ChatOpenAI(base_url=fake.base_url, api_key="test", model="m", max_retries=1)
        message = await model.ainvoke("hi")
        statuses = [r.rule for r in fake.state.requests]
    assert message.content == "second time lucky"
    assert statuses == ["rule#0", "default"]


async def test_mid_stream_drop_raises_after_the_first_chunks() -> None:
    script = _only(Rule(reply=Reply.text("one two three four five six"), fault=Fault("drop", 3)))
    received: list[str] = []
    async with running_fake_openai(script) as fake:
        # openai reports the broken chunked body as a connection error.
        with pytest.raises(openai.APIConnectionError):
            await _drain(_model(fake.base_url).astream("hi"), received)
    # The role frame and two content frames arrived before the connection broke.
    assert "".join(received) == "one two"


async def test_error_event_mid_stream_raises_api_error() -> None:
    fault = Fault("error_event", 2, message="The model fell over.", code="model_crash")
    async with running_fake_openai(_only(Rule(reply=Reply.text("a b c d"), fault=fault))) as fake:
        with pytest.raises(openai.APIError, match=r"The model fell over\."):
            [c async for c in _model(fake.base_url).astream("hi")]


async def test_error_fault_on_a_non_streaming_request_is_an_http_error() -> None:
    fault = Fault("error_event", status=503, message="overloaded")
    async with running_fake_openai(_only(Rule(reply=Reply.text("x"), fault=fault))) as fake:
        with pytest.raises(openai.InternalServerError, match="overloaded"):
            await _model(fake.base_url).ainvoke("hi")


async def test_a_hang_makes_the_client_timeout_fire_and_is_seen_as_a_disconnect() -> None:
    script = _only(Rule(reply=Reply.text("one two three four"), fault=Fault("hang", 2)))
    received: list[str] = []
    async with running_fake_openai(script) as fake:
        with pytest.raises((httpx.ReadTimeout, openai.APITimeoutError)):
            await _drain(_model(fake.base_url, timeout=0.3).astream("hi"), received)
        disconnects = await fake.state.wait_for_disconnects(1)
    assert "".join(received) == "one"
    assert disconnects[0].frames_sent == 2


async def test_a_hang_without_any_chunk_still_sends_headers() -> None:
    script = _only(Rule(reply=Reply.text("x"), fault=Fault("hang")))
    body = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
    async with (
        running_fake_openai(script) as fake,
        httpx.AsyncClient(timeout=httpx.Timeout(5.0, read=0.3)) as client,
        client.stream("POST", f"{fake.base_url}/chat/completions", json=body) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        with pytest.raises(httpx.ReadTimeout):
            await response.aread()


async def test_client_disconnect_mid_stream_is_recorded() -> None:
    # 20 tokens per second: the answer takes seconds, so the client leaves long before the end.
    script = _only(Rule(name="slow", reply=Reply.filler(200), timing=Timing(tps=20), fault=None))
    async with running_fake_openai(script) as fake:
        stream = cast("AsyncGenerator[BaseMessageChunk, None]", _model(fake.base_url).astream("hi"))
        got = [await anext(stream) for _ in range(4)]
        await stream.aclose()
        disconnects = await fake.state.wait_for_disconnects(1)
        assert fake.state.active_responses == 0
        async with httpx.AsyncClient() as client:
            listed = (await client.get(f"{fake.origin}/_fake/disconnects")).json()
    assert len(got) == 4
    assert disconnects[0].rule == "slow"
    assert disconnects[0].seq == 1
    assert 0 < disconnects[0].frames_sent < 200
    assert listed["total"] == 1
    assert listed["disconnects"][0]["rule"] == "slow"


async def test_a_finished_stream_is_not_a_disconnect() -> None:
    async with running_fake_openai() as fake:
        [c async for c in _model(fake.base_url).astream("hi")]
        await _model(fake.base_url).ainvoke("hi")
        await asyncio.sleep(0.05)
    assert list(fake.state.disconnects) == []


async def test_client_disconnect_while_waiting_for_first_token_is_recorded() -> None:
    script = _only(Rule(reply=Reply.text("late"), timing=Timing(ttft_ms=5_000)))
    async with running_fake_openai(script) as fake:
        with pytest.raises(openai.APITimeoutError):
            await _model(fake.base_url, timeout=0.2).ainvoke("hi")
        disconnects = await fake.state.wait_for_disconnects(1)
    assert disconnects[0].frames_sent == 0


async def test_cancelling_the_consumer_closes_the_model_connection() -> None:
    # What the agent service does when its own client leaves: cancel the task reading the model.
    script = _only(Rule(name="slow", reply=Reply.filler(100), timing=Timing(tps=20)))
    received: list[str] = []
    streaming = asyncio.Event()

    async def read(base_url: str) -> None:
        async for chunk in _model(base_url).astream("hi"):
            received.append(str(chunk.content))
            if len(received) == 3:
                streaming.set()

    async with running_fake_openai(script) as fake:
        reader = asyncio.create_task(read(fake.base_url))
        await asyncio.wait_for(streaming.wait(), 5)
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
        disconnects = await fake.state.wait_for_disconnects(1)
    assert disconnects[0].rule == "slow"
    assert disconnects[0].frames_sent >= 3
