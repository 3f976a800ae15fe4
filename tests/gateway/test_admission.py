"""Rate limits as the transports apply them: 429 before streams, leases, charges, WS errors."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from support.gateway_harness import (
    FakeUpstream,
    Hang,
    WatchedLimiter,
    gateway_settings,
    post_stream,
    running_gateway,
    sql_answer,
)

from contracts.agent_api import TokenEvent
from gateway.rate_limit import InProcessLimiter, LimitsConfig


async def test_over_the_request_limit_is_a_429_with_headers_before_any_stream(
    upstream: FakeUpstream,
) -> None:
    upstream.script = sql_answer()
    limiter = InProcessLimiter(LimitsConfig(user_requests=2, user_window_s=60))
    async with running_gateway(gateway_settings(upstream.url), limiter=limiter) as gw:
        first = await post_stream(gw, {"message": "one"})
        second = await post_stream(gw, {"message": "two"})
        third = await post_stream(gw, {"message": "three"})
        other_user = await post_stream(gw, {"message": "hi"}, gw.auth("u-dave", "acme-hvac"))
    assert first.status == second.status == other_user.status == 200
    assert '"user-requests";q=2;w=60' in first.headers["RateLimit-Policy"]
    assert '"user-requests";r=1;' in first.headers["RateLimit"]
    assert third.status == 429
    assert int(third.headers["Retry-After"]) >= 1
    assert '"user-requests";r=0;' in third.headers["RateLimit"]
    assert third.events[0]["error"]["code"] == "RATE_LIMITED"
    assert third.events[0]["error"]["retryable"] is True
    assert len(upstream.streams()) == 3


async def test_concurrent_streams_are_leased_and_given_back(upstream: FakeUpstream) -> None:
    upstream.script = [TokenEvent(channel="final", content="Working"), Hang()]
    limiter = WatchedLimiter(LimitsConfig(user_streams=1))
    settings = gateway_settings(upstream.url, resume=False)  # the slot follows the connection
    async with running_gateway(settings, limiter=limiter) as gw:
        async with aiohttp.ClientSession() as s:
            held = await s.post(
                f"{gw.url}/api/chat/stream", json={"message": "a"}, headers=gw.auth()
            )
            while b"Working" not in await held.content.readany():
                pass
            refused = await post_stream(gw, {"message": "b"})
            assert refused.status == 429
            assert '"user-streams"' in refused.headers["RateLimit-Policy"]
            held.close()
        async with asyncio.timeout(10):
            await upstream.disconnected.wait()
            await limiter.released.wait()  # in the handler's `finally`, after the upstream closes
        upstream.script = sql_answer()
        status = (await post_stream(gw, {"message": "c"})).status
        assert status == 200


async def test_tokens_are_charged_from_usage_and_the_budget_is_enforced(
    upstream: FakeUpstream,
) -> None:
    upstream.script = sql_answer()  # reports usage.total_tokens = 15
    limiter = InProcessLimiter(LimitsConfig(company_tokens=10))
    async with running_gateway(gateway_settings(upstream.url), limiter=limiter) as gw:
        crossing = await post_stream(gw, {"message": "a"})
        after = await post_stream(gw, {"message": "b"}, gw.auth("u-dave", "acme-hvac"))
        elsewhere = await post_stream(gw, {"message": "c"}, gw.auth("u-bob", "bluepeak-plumbing"))
    assert crossing.status == 200 and crossing.events[-1]["type"] == "complete"
    assert after.status == 429
    assert '"company-tokens"' in after.headers["RateLimit-Policy"]
    assert elsewhere.status == 200


async def test_websocket_turns_get_a_rate_limit_error_event(upstream: FakeUpstream) -> None:
    upstream.script = sql_answer()
    limiter = InProcessLimiter(LimitsConfig(user_requests=1))
    async with (
        running_gateway(gateway_settings(upstream.url), limiter=limiter) as gw,
        aiohttp.ClientSession() as s,
        s.ws_connect(gw.ws_url, headers=gw.auth()) as ws,
    ):
        assert (await ws.receive_json())["type"] == "auth_success"
        last: dict[str, Any] = {}
        for _ in range(2):
            await ws.send_json({"type": "message", "message": "hi"})
            while (last := json.loads((await ws.receive()).data))["type"] not in (
                "complete",
                "error",
            ):
                pass
        assert last["code"] == "RATE_LIMITED"
        assert last["retryable"] is True
        assert last["retry_after"] >= 1


async def test_metrics_count_requests_streams_tokens_and_rejections(
    upstream: FakeUpstream,
) -> None:
    upstream.script = sql_answer()
    limiter = InProcessLimiter(LimitsConfig(user_requests=1))
    async with running_gateway(gateway_settings(upstream.url), limiter=limiter) as gw:
        await post_stream(gw, {"message": "a"})
        await post_stream(gw, {"message": "b"})
        async with aiohttp.ClientSession() as s, s.get(f"{gw.url}/metrics") as resp:
            text = await resp.text()
    assert 'gateway_limit_rejections_total{policy="user-requests"} 1.0' in text
    assert 'gateway_tokens_relayed_total{transport="sse"} 4.0' in text
    assert 'gateway_stream_endings_total{ending="complete",transport="sse"} 1.0' in text
    assert 'gateway_time_to_first_token_seconds_count{transport="sse"} 1.0' in text
    assert 'gateway_active_streams{transport="sse"} 0.0' in text
    assert 'gateway_requests_total{route="/api/chat/stream",status="429"} 1.0' in text
