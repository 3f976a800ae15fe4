"""The company token budget (issue 13.2): a run is charged what the model was asked to do,
however the client ends it. Without resume a hang-up ends the run, which is charged its
reservation; with resume (the default) the run goes on without its client and is charged its
usage when it ends, and a run the user stops is charged its reservation."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from support.gateway_harness import (
    FakeUpstream,
    Gate,
    Gateway,
    Hang,
    gateway_settings,
    post_stream,
    running_gateway,
    sql_answer,
    stats,
)

from contracts.agent_api import CompleteEvent, TokenEvent
from gateway.auth import Principal
from gateway.rate_limit import InProcessLimiter, LimitsConfig

RESERVE = 500
MESSAGE = "How many technicians are active this week?"
USERS = ["u-alice", "u-dave", "u-erin", "u-frank", "u-gina"]


class ChargeLog(InProcessLimiter):
    """The in-process limiter, keeping every charge for the test to read."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.charges: list[tuple[str, int]] = []
        self.charged = asyncio.Condition()

    async def charge_tokens(self, principal: Principal, tokens: int) -> None:
        await super().charge_tokens(principal, tokens)
        async with self.charged:
            self.charges.append((principal.user_id, tokens))
            self.charged.notify_all()

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(10), self.charged:
            await self.charged.wait_for(lambda: len(self.charges) >= count)


async def hang_up_sse(gw: Gateway, user: str, path: str = "/api/chat/stream") -> None:
    body: dict[str, Any] = {"message": MESSAGE}
    if path == "/api/chat":
        body = {
            "id": f"chat-{user}",
            "messages": [{"role": "user", "parts": [{"type": "text", "text": MESSAGE}]}],
        }
    async with aiohttp.ClientSession() as s:
        resp = await s.post(f"{gw.url}{path}", json=body, headers=gw.auth(user, "acme-hvac"))
        assert resp.status == 200
        while b"Working" not in await resp.content.readany():
            pass
        resp.close()  # hang up after the first token


async def hang_up_ai_sdk(gw: Gateway, user: str) -> None:
    await hang_up_sse(gw, user, "/api/chat")


async def hang_up_ws(gw: Gateway, user: str) -> None:
    async with (
        aiohttp.ClientSession() as s,
        s.ws_connect(gw.ws_url, headers=gw.auth(user, "acme-hvac")) as ws,
    ):
        assert (await ws.receive_json())["type"] == "auth_success"
        await ws.send_json({"type": "message", "message": MESSAGE})
        while (await ws.receive_json()).get("type") != "token":
            pass
    # leaving the block closes the socket mid-answer


async def stop_ws(gw: Gateway, user: str) -> None:
    async with (
        aiohttp.ClientSession() as s,
        s.ws_connect(gw.ws_url, headers=gw.auth(user, "acme-hvac")) as ws,
    ):
        assert (await ws.receive_json())["type"] == "auth_success"
        await ws.send_json({"type": "message", "message": MESSAGE})
        while (await ws.receive_json()).get("type") != "token":
            pass
        await ws.send_json({"type": "stop"})
        while (await ws.receive_json()).get("type") != "error":
            pass


async def hang_up_complete(gw: Gateway, user: str) -> None:
    async with aiohttp.ClientSession() as s:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await s.post(
                    f"{gw.url}/api/chat/complete",
                    json={"message": MESSAGE},
                    headers=gw.auth(user, "acme-hvac"),
                )


@pytest.mark.parametrize(
    "hang_up", [hang_up_sse, hang_up_ai_sdk, hang_up_ws, stop_ws, hang_up_complete]
)
async def test_five_users_hanging_up_after_the_first_token_pay_for_each_run(
    upstream: FakeUpstream, hang_up: Callable[[Gateway, str], Awaitable[None]]
) -> None:
    """Ten model calls for five budget tokens was the attack: each run cut short is charged at
    least its reservation (the prompt and routing call the model was asked to do)."""
    upstream.script = [TokenEvent(channel="final", content="Working"), Hang()]
    if hang_up is hang_up_complete:
        upstream.script = sql_answer()
        upstream.chat_gate = asyncio.Event()  # the answer never comes before the client leaves
    limiter = ChargeLog(LimitsConfig(company_tokens=1_000_000))
    # Runs end with their client (no resume), as they do for clients that cannot resume.
    settings = gateway_settings(upstream.url, limit_run_reserve_tokens=RESERVE, resume=False)
    async with running_gateway(settings, limiter=limiter) as gw:
        await asyncio.gather(*(hang_up(gw, user) for user in USERS))
        await limiter.wait_for(len(USERS))
    expected = RESERVE + math.ceil(len(MESSAGE) / 4)
    assert sorted(user for user, _ in limiter.charges) == sorted(USERS)
    assert all(tokens >= expected for _, tokens in limiter.charges), limiter.charges


async def test_hang_ups_exhaust_the_company_budget(upstream: FakeUpstream) -> None:
    """Hanging up is no way around the budget: after enough of them the company is refused."""
    upstream.script = [TokenEvent(channel="final", content="Working"), Hang()]
    limiter = ChargeLog(LimitsConfig(company_tokens=3 * RESERVE))
    settings = gateway_settings(upstream.url, limit_run_reserve_tokens=RESERVE, resume=False)
    async with running_gateway(settings, limiter=limiter) as gw:
        for count, user in enumerate(USERS[:3], start=1):
            await hang_up_sse(gw, user)
            await limiter.wait_for(count)
        refused = await post_stream(gw, {"message": MESSAGE}, gw.auth("u-gina", "acme-hvac"))
    assert refused.status == 429
    assert '"company-tokens"' in refused.headers["RateLimit-Policy"]


async def test_a_completed_run_is_charged_its_usage_not_the_reservation(
    upstream: FakeUpstream,
) -> None:
    upstream.script = sql_answer()  # reports usage.total_tokens = 15
    limiter = ChargeLog(LimitsConfig(company_tokens=1_000_000))
    settings = gateway_settings(upstream.url, limit_run_reserve_tokens=RESERVE)
    async with running_gateway(settings, limiter=limiter) as gw:
        done = await post_stream(gw, {"message": MESSAGE})
        await limiter.wait_for(1)
    assert done.events[-1]["type"] == "complete"
    assert limiter.charges == [("u-alice", 15)]


async def stop_sse(gw: Gateway, user: str) -> None:
    async with aiohttp.ClientSession() as s:
        auth = gw.auth(user, "acme-hvac")
        resp = await s.post(f"{gw.url}/api/chat/stream", json={"message": MESSAGE}, headers=auth)
        while b"Working" not in await resp.content.readany():
            pass
        stop = await s.post(f"{gw.url}/api/chat/runs/{resp.headers['X-Run-Id']}/stop", headers=auth)
        assert stop.status == 202
        resp.close()


@pytest.mark.parametrize("stop", [stop_ws, stop_sse])
async def test_a_resumable_run_the_user_stops_is_charged_its_reservation(
    upstream: FakeUpstream, stop: Callable[[Gateway, str], Awaitable[None]]
) -> None:
    upstream.script = [TokenEvent(channel="final", content="Working"), Hang()]
    limiter = ChargeLog(LimitsConfig(company_tokens=1_000_000))
    settings = gateway_settings(upstream.url, limit_run_reserve_tokens=RESERVE)
    async with running_gateway(settings, limiter=limiter) as gw:
        await asyncio.gather(*(stop(gw, user) for user in USERS[:2]))
        await limiter.wait_for(2)
    expected = RESERVE + math.ceil(len(MESSAGE) / 4)
    assert [tokens for _, tokens in limiter.charges] == [expected, expected]


@pytest.mark.parametrize("hang_up", [hang_up_sse, hang_up_ai_sdk, hang_up_ws])
async def test_a_resumable_run_whose_client_left_is_charged_its_usage_when_it_ends(
    upstream: FakeUpstream, hang_up: Callable[[Gateway, str], Awaitable[None]]
) -> None:
    """With resume the run goes on without its client: it is charged what it really used
    when it completes (15 here), not a reservation at the hang-up, and charged once."""
    gate = asyncio.Event()
    upstream.script = [
        TokenEvent(channel="final", content="Working"),
        Gate(gate),
        TokenEvent(channel="final", content=" done."),
        CompleteEvent(stats=stats()),  # usage.total_tokens = 15
    ]
    limiter = ChargeLog(LimitsConfig(company_tokens=1_000_000))
    settings = gateway_settings(upstream.url, limit_run_reserve_tokens=RESERVE)
    async with running_gateway(settings, limiter=limiter) as gw:
        await hang_up(gw, "u-alice")
        assert limiter.charges == []  # the run is still going
        gate.set()
        await limiter.wait_for(1)
        # The stream slot came back with the run's end: the user can run another.
        again = await post_stream(gw, {"message": MESSAGE})
    assert limiter.charges[0] == ("u-alice", 15)
    assert again.status == 200
