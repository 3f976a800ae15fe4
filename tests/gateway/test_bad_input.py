"""Hostile or malformed input gets a clear 400 / error event, never a 500 or a dropped socket."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from support.gateway_harness import FakeUpstream, gateway_settings, running_gateway

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


def use_chat(text: str) -> dict[str, Any]:
    return {
        "id": "chat123",
        "messages": [{"id": "m1", "role": "user", "parts": [{"type": "text", "text": text}]}],
        "trigger": "submit-message",
    }


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/chat/stream", {"message": "x" * 8001}),
        ("/api/chat/complete", {"message": "x" * 8001}),
        ("/api/chat/stream", {"message": "hi", "conversation_id": "conv-1\n"}),
        ("/api/chat", use_chat("x" * 8001)),
    ],
)
async def test_input_errors_are_400_not_401(
    upstream: FakeUpstream, path: str, body: dict[str, Any]
) -> None:
    async with (
        running_gateway(gateway_settings(upstream.url)) as gw,
        aiohttp.ClientSession() as s,
        s.post(f"{gw.url}{path}", json=body, headers=gw.auth()) as r,
    ):
        assert r.status == 400, await r.text()
        assert (await r.json())["error"]["code"] == "INVALID_REQUEST"
    assert not upstream.requests


async def test_websocket_input_errors_are_invalid_request_not_unauthorized(
    upstream: FakeUpstream,
) -> None:
    async with (
        running_gateway(gateway_settings(upstream.url)) as gw,
        aiohttp.ClientSession() as s,
        s.ws_connect(gw.ws_url, headers=gw.auth()) as ws,
    ):
        assert (await receive_json(ws))["type"] == "auth_success"
        bad = [
            {"type": "message", "message": "x" * 8001},
            {"type": "message", "message": "hi", "session_id": "conv-1\n"},
            {"type": "message", "message": "hi", "conversation_id": "a" * 129},
        ]
        for message in bad:
            await ws.send_json(message)
            error = await receive_json(ws)
            assert (error["type"], error["code"]) == ("error", "INVALID_REQUEST"), error
        assert "8000" in (await _first_error(ws, bad[0]))["message"]
        await ws.send_json({"type": "message", "message": "   "})
        assert (await receive_json(ws))["code"] == "EMPTY_MESSAGE"
        await ws.send_json({"type": "ping"})  # still open and signed in
        assert (await receive_json(ws))["type"] == "pong"
    assert not upstream.requests


async def _first_error(ws: aiohttp.ClientWebSocketResponse, message: Any) -> dict[str, Any]:
    await ws.send_json(message)
    return await receive_json(ws)


@pytest.mark.parametrize(
    "path",
    ["/api/chat/stream", "/api/chat/complete", "/api/chat", "/api/agui", "/v1/chat/completions"],
)
@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "text/plain;charset=utf-8", None, "application/x-www-form-urlencoded"],
)
async def test_json_body_under_another_content_type_gets_415(
    upstream: FakeUpstream, path: str, content_type: str | None
) -> None:
    """A cross-site form or `fetch` without a JSON header skips the CORS preflight: 415, as
    docs/public-api.md promises, and the agent never hears of it."""
    body = json.dumps({"message": "hi", "id": "c1", "messages": [{"role": "user", "parts": []}]})
    async with running_gateway(gateway_settings(upstream.url)) as gw, aiohttp.ClientSession() as s:
        headers = gw.auth()
        if content_type is not None:
            headers["Content-Type"] = content_type
        async with s.post(f"{gw.url}{path}", data=body.encode(), headers=headers) as r:
            assert r.status == 415
            assert (await r.json())["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert not upstream.requests
