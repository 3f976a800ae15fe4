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
            for _ in range(2):
                ws = await open_sockets.enter_async_context(
                    s.ws_connect(gw.ws_url, headers=gw.auth())
                )
                assert (await receive(ws))["type"] == "auth_success"
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
