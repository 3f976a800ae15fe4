"""Conversation routes have their own request windows; sockets per user are capped."""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import pytest
from support.gateway_harness import FakeUpstream, gateway_settings, running_gateway, sql_answer

from gateway.app_state import OPEN_STREAMS


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/conversations"),
        ("GET", "/api/conversations/conv-known"),
        ("DELETE", "/api/conversations/conv-known"),
    ],
)
async def test_conversation_routes_are_rate_limited(
    upstream: FakeUpstream, method: str, path: str
) -> None:
    settings = gateway_settings(upstream.url, limit_user_conversation_requests=2)
    async with running_gateway(settings) as gw, aiohttp.ClientSession() as s:
        statuses = []
        headers: dict[str, str] = {}
        body = b""
        for _ in range(3):
            async with s.request(method, f"{gw.url}{path}", headers=gw.auth()) as r:
                statuses.append(r.status)
                headers = dict(r.headers)
                body = await r.read()
        # Another user is not affected.
        async with s.request(method, f"{gw.url}{path}", headers=gw.auth("u-dave")) as r:
            other = r.status
    assert statuses[:2] in ([200, 200], [204, 204])
    assert statuses[2] == 429
    assert json.loads(body)["error"]["code"] == "RATE_LIMITED"
    assert "Retry-After" in headers
    assert other in (200, 204)
    assert len(upstream.requests) == 3  # the refused call never reached the agent


async def test_conversation_calls_do_not_spend_chat_requests(upstream: FakeUpstream) -> None:
    upstream.script = sql_answer()
    settings = gateway_settings(upstream.url, limit_user_requests=1)
    async with running_gateway(settings) as gw, aiohttp.ClientSession() as s:
        for _ in range(3):  # what the chat page does on load and after each answer
            async with s.get(f"{gw.url}/api/conversations", headers=gw.auth()) as r:
                assert r.status == 200
        body = {"message": "How many?"}
        async with s.post(f"{gw.url}/api/chat/stream", json=body, headers=gw.auth()) as r:
            assert r.status == 200
            await r.read()
        async with s.post(f"{gw.url}/api/chat/stream", json=body, headers=gw.auth()) as r:
            assert r.status == 429  # the chat window itself still holds


async def receive(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await asyncio.wait_for(ws.receive(), 10)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    data: dict[str, Any] = json.loads(msg.data)
    return data


async def test_open_sockets_per_user_are_capped(upstream: FakeUpstream) -> None:
    settings = gateway_settings(upstream.url, ws_max_per_user=2)
    async with running_gateway(settings) as gw, aiohttp.ClientSession() as s:
        async with AsyncExitStack() as open_sockets:
            sockets: list[aiohttp.ClientWebSocketResponse] = []
            for _ in range(2):
                sockets.append(
                    await open_sockets.enter_async_context(
                        s.ws_connect(gw.ws_url, headers=gw.auth())
                    )
                )
                assert (await receive(sockets[-1]))["type"] == "auth_success"
            ws = sockets[-1]
            # The third, authenticating by header and by first message: refused with 1008.
            async with s.ws_connect(gw.ws_url, headers=gw.auth()) as third:
                refused = await receive(third)
                assert (refused["type"], refused["code"]) == ("error", "RATE_LIMITED")
                assert (await third.receive()).type == aiohttp.WSMsgType.CLOSE
                assert third.close_code == 1008
            async with s.ws_connect(gw.ws_url) as third:
                await third.send_json({"type": "auth", "token": gw.token()})
                assert (await receive(third))["code"] == "RATE_LIMITED"
                assert (await third.receive()).type == aiohttp.WSMsgType.CLOSE
                assert third.close_code == 1008
            # Another user still gets in.
            async with s.ws_connect(gw.ws_url, headers=gw.auth("u-dave")) as other:
                assert (await receive(other))["type"] == "auth_success"
            # Re-authenticating on an open socket does not count it twice.
            await ws.send_json({"type": "auth", "token": gw.token()})
            assert (await receive(ws))["type"] == "auth_success"
        # Closing the sockets gives the slots back (once the server has seen them close).
        counts = gw.app[OPEN_STREAMS].sockets_per_user
        async with asyncio.timeout(10):
            while ("acme-hvac", "u-alice") in counts:  # noqa: ASYNC110 (server state, no event)
                await asyncio.sleep(0.01)
        async with s.ws_connect(gw.ws_url, headers=gw.auth()) as again:
            assert (await receive(again))["type"] == "auth_success"


METRICS_TOKEN = "metrics-scraper-token-0123456789"


def production_settings(agent_url: str, **overrides: Any) -> Any:
    return gateway_settings(
        agent_url,
        env="production",
        internal_key="a-real-internal-secret-of-enough-length-0123",
        jwt_hs256_secret="a-real-user-token-secret-of-enough-length-01",
        **overrides,
    )


async def test_production_metrics_are_not_public(upstream: FakeUpstream) -> None:
    """Issue 13.13: no token configured, no /metrics on a public gateway."""
    async with (
        running_gateway(production_settings(upstream.url)) as gw,
        aiohttp.ClientSession() as s,
        s.get(f"{gw.url}/metrics") as r,
    ):
        assert r.status == 404


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (None, 401),
        ("Bearer wrong-token-of-the-same-size-012", 401),
        (f"Basic {METRICS_TOKEN}", 401),
        (f"Bearer {METRICS_TOKEN}", 200),
    ],
)
async def test_metrics_need_the_metrics_token(
    upstream: FakeUpstream, authorization: str | None, status: int
) -> None:
    settings = production_settings(upstream.url, metrics_token=METRICS_TOKEN)
    headers = {"Authorization": authorization} if authorization else {}
    async with (
        running_gateway(settings) as gw,
        aiohttp.ClientSession() as s,
        s.get(f"{gw.url}/metrics", headers=headers) as r,
    ):
        assert r.status == status
        text = await r.text()
    assert ("gateway_requests_total" in text) == (status == 200)


async def test_unauthenticated_websockets_are_capped_per_address(upstream: FakeUpstream) -> None:
    """60 idle sockets were each held for the 10 s auth deadline; past the cap the upgrade is
    refused with 429, and a socket that authenticates frees its place."""
    settings = gateway_settings(upstream.url, ws_max_unauthenticated_per_ip=3)
    async with (
        running_gateway(settings) as gw,
        aiohttp.ClientSession() as s,
        AsyncExitStack() as stack,
    ):
        waiting = [await stack.enter_async_context(s.ws_connect(gw.ws_url)) for _ in range(3)]
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await s.ws_connect(gw.ws_url)
        assert refused.value.status == 429
        # A token in the handshake does not wait, so it is not counted.
        with_token = await stack.enter_async_context(s.ws_connect(gw.ws_url, headers=gw.auth()))
        assert (await with_token.receive_json())["type"] == "auth_success"
        await waiting[0].send_json({"type": "auth", "token": gw.token()})
        assert (await waiting[0].receive_json())["type"] == "auth_success"
        another = await stack.enter_async_context(s.ws_connect(gw.ws_url))
        assert not another.closed
