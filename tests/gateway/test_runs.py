"""Every run pays: non-streaming answers hold a stream slot and are charged; stopped, abandoned
and failed streams are charged the tokens relayed before they ended."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from support.gateway_harness import (
    FakeUpstream,
    Gateway,
    Hang,
    Step,
    gateway_settings,
    read_sse,
    running_gateway,
    sql_answer,
    ui_events,
)

from contracts.agent_api import TokenEvent
from gateway.auth import Principal
from gateway.rate_limit import InProcessLimiter

THREE_TOKENS_THEN_HANG: list[Step] = [
    TokenEvent(channel="final", content="One"),
    TokenEvent(channel="final", content=" two"),
    TokenEvent(channel="final", content=" three"),
    Hang(),
]


class RecordingLimiter(InProcessLimiter):
    """The in-process limiter, telling the test what was charged."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.charged: list[int] = []
        self.charge_seen = asyncio.Event()

    async def charge_tokens(self, principal: Principal, tokens: int) -> None:
        await super().charge_tokens(principal, tokens)
        self.charged.append(tokens)
        self.charge_seen.set()


async def complete(gw: Gateway, message: str = "How many?") -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as s,
        s.post(f"{gw.url}/api/chat/complete", json={"message": message}, headers=gw.auth()) as r,
    ):
        return r.status, await r.json()


async def test_complete_is_charged_to_the_company_token_budget(upstream: FakeUpstream) -> None:
    upstream.script = sql_answer()
    async with running_gateway(gateway_settings(upstream.url, limit_company_tokens=10)) as gw:
        first = await complete(gw)
        # The answer used 15 tokens (usage.total_tokens): the budget of 10 is spent.
        second = await complete(gw)
    assert first[0] == 200
    assert second[0] == 429 and second[1]["error"]["code"] == "RATE_LIMITED"
    assert "company-tokens" in second[1]["error"]["message"]


async def test_complete_holds_one_of_the_users_stream_slots(upstream: FakeUpstream) -> None:
    upstream.script = sql_answer()
    upstream.chat_gate = asyncio.Event()
    settings = gateway_settings(upstream.url, limit_user_streams=1)
    async with running_gateway(settings) as gw:
        first = asyncio.create_task(complete(gw))
        async with asyncio.timeout(10):
            await upstream.chat_started.wait()
        async with asyncio.timeout(10):  # without a slot check they would wait on the gate
            others = await asyncio.gather(complete(gw), complete(gw))
        upstream.chat_gate.set()
        done = await first
        after = await complete(gw)  # the slot came back
    assert done[0] == 200
    assert [status for status, _ in others] == [429, 429]
    assert all("user-streams" in body["error"]["message"] for _, body in others)
    assert after[0] == 200


async def test_a_stopped_websocket_run_is_charged_what_it_relayed_above_its_reservation(
    upstream: FakeUpstream,
) -> None:
    upstream.script = THREE_TOKENS_THEN_HANG
    # a reservation of 2 + 3 (the message's ~4 characters a token) under the 3 relayed: 5
    settings = gateway_settings(upstream.url, limit_company_tokens=5, limit_run_reserve_tokens=2)
    limiter = RecordingLimiter(settings.limits_config())
    async with (
        running_gateway(settings, limiter=limiter) as gw,
        aiohttp.ClientSession() as s,
        s.ws_connect(gw.ws_url, headers=gw.auth()) as ws,
    ):
        assert (await ws.receive_json())["type"] == "auth_success"
        await ws.send_json({"type": "message", "message": "a long one"})
        tokens = 0
        while tokens < 3:
            event = await asyncio.wait_for(ws.receive_json(), 10)
            tokens += event["type"] == "token"
        await ws.send_json({"type": "stop"})
        while (event := await asyncio.wait_for(ws.receive_json(), 10))["type"] != "error":
            pass
        assert event["code"] == "CANCELLED"
        async with asyncio.timeout(10):
            await limiter.charge_seen.wait()
        await ws.send_json({"type": "message", "message": "another"})
        refused = await asyncio.wait_for(ws.receive_json(), 10)
    assert limiter.charged == [5]  # its reservation: more than the 3 tokens relayed
    assert (refused["type"], refused["code"]) == ("error", "RATE_LIMITED")


async def test_an_abandoned_sse_run_is_charged_what_it_relayed_above_its_reservation(
    upstream: FakeUpstream,
) -> None:
    upstream.script = THREE_TOKENS_THEN_HANG
    # the run ends with its client (no resume); no reservation: what it relayed
    settings = gateway_settings(upstream.url, resume=False, limit_run_reserve_tokens=0)
    limiter = RecordingLimiter(settings.limits_config())
    async with running_gateway(settings, limiter=limiter) as gw:
        async with aiohttp.ClientSession() as s:
            resp = await s.post(
                f"{gw.url}/api/chat/stream", json={"message": "a long one"}, headers=gw.auth()
            )
            seen = 0
            async for line in resp.content:
                seen += line.startswith(b"event: token")
                if seen == 3:
                    break
            resp.close()  # the user closed the tab
        async with asyncio.timeout(10):
            await upstream.disconnected.wait()
            await limiter.charge_seen.wait()
    assert limiter.charged == [3]  # max(3 relayed, reservation 0 + 3 for "a long one")


async def test_a_completed_stream_is_charged_the_agents_count_once(
    upstream: FakeUpstream,
) -> None:
    upstream.script = sql_answer()
    settings = gateway_settings(upstream.url)
    limiter = RecordingLimiter(settings.limits_config())
    async with (
        running_gateway(settings, limiter=limiter) as gw,
        aiohttp.ClientSession() as s,
        s.post(f"{gw.url}/api/chat/stream", json={"message": "How many?"}, headers=gw.auth()) as r,
    ):
        events = ui_events(await read_sse(r))
    assert events[-1]["type"] == "complete"
    assert limiter.charged == [15]  # usage.total_tokens, not the 3 relayed answer tokens
