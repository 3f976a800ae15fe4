"""The company token budget (issue 13.2): a run is charged what the model was asked to do,
however the client ends it."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from support.gateway_harness import (
    FakeUpstream,
    Gateway,
    Hang,
    gateway_settings,
    post_stream,
    running_gateway,
    sql_answer,
)

from contracts.agent_api import TokenEvent
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
    settings = gateway_settings(upstream.url, limit_run_reserve_tokens=RESERVE)
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
    settings = gateway_settings(upstream.url, limit_run_reserve_tokens=RESERVE)
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
