"""Hostile or malformed input gets a clear 400 / error event, never a 500 or a dropped socket."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from gw_helpers import FakeUpstream, gateway_settings, running_gateway

DEEP = "[" * 60_000  # under the 64 KiB body limit, far past any JSON decoder's nesting limit
DEEP_OBJECT = '{"a":' * 10_000


async def receive_json(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await asyncio.wait_for(ws.receive(), 10)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    data: dict[str, Any] = json.loads(msg.data)
    return data


@pytest.mark.parametrize("path", ["/api/chat/stream", "/api/chat/complete", "/api/chat"])
@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT])
async def test_deeply_nested_bodies_are_refused_with_400(
    upstream: FakeUpstream, path: str, body: str
) -> None:
    async with running_gateway(gateway_settings(upstream.url)) as gw, aiohttp.ClientSession() as s:
        headers = {**gw.auth(), "Content-Type": "application/json"}
        async with s.post(f"{gw.url}{path}", data=body, headers=headers) as r:
            assert r.status == 400
            assert (await r.json())["error"]["code"] == "INVALID_REQUEST"
    assert not upstream.requests


async def test_deeply_nested_dev_token_request_is_refused_with_400(upstream: FakeUpstream) -> None:
    async with (
        running_gateway(gateway_settings(upstream.url)) as gw,
        aiohttp.ClientSession() as s,
        s.post(
            f"{gw.url}/auth/dev-token", data=DEEP, headers={"Content-Type": "application/json"}
        ) as r,
    ):
        assert r.status == 400
        assert (await r.json())["error"]["code"] == "INVALID_REQUEST"


async def test_deeply_nested_websocket_messages_get_an_error_event(upstream: FakeUpstream) -> None:
    async with running_gateway(gateway_settings(upstream.url)) as gw, aiohttp.ClientSession() as s:
        # Before authentication (the first-message auth path) ...
        async with s.ws_connect(gw.ws_url) as ws:
            await ws.send_str(DEEP)
            assert (await receive_json(ws))["code"] == "AUTH_REQUIRED"
            await ws.send_json({"type": "ping"})
            assert (await receive_json(ws))["type"] == "pong"
        # ... and after: the socket stays open and usable.
        async with s.ws_connect(gw.ws_url, headers=gw.auth()) as ws:
            assert (await receive_json(ws))["type"] == "auth_success"
            for text in (DEEP, DEEP_OBJECT):
                await ws.send_str(text)
                error = await receive_json(ws)
                assert (error["type"], error["code"]) == ("error", "INVALID_REQUEST")
            await ws.send_json({"type": "ping"})
            assert (await receive_json(ws))["type"] == "pong"
