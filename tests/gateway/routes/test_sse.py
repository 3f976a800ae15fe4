"""`POST /api/chat/stream` against a scripted fake agent service."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket

import aiohttp
import jwt
import pytest
from aiohttp import web
from support.gateway_harness import (
    Comment,
    Die,
    FakeUpstream,
    Hang,
    Refuse,
    WatchedLimiter,
    gateway_settings,
    post_stream,
    rag_answer,
    read_sse,
    running_gateway,
    sql_answer,
    ui_events,
)

from contracts.agent_api import TokenEvent
from contracts.internal_token import INTERNAL_AUDIENCE
from gateway.rate_limit import LimitsConfig
from gateway.settings import DEV_INTERNAL_SECRET


async def test_streams_ui_events_with_sse_headers(upstream: FakeUpstream) -> None:
    upstream.script = sql_answer("conv-7")
    async with running_gateway(gateway_settings(upstream.url)) as gw, aiohttp.ClientSession() as s:
        body = {"message": "How many technicians are active?", "conversation_id": "conv-7"}
        async with s.post(f"{gw.url}/api/chat/stream", json=body, headers=gw.auth()) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "text/event-stream"
            assert resp.headers["Cache-Control"] == "no-cache"
            assert resp.headers["X-Accel-Buffering"] == "no"
            assert "Content-Encoding" not in resp.headers
            assert "RateLimit" in resp.headers
            messages = await read_sse(resp)
    events = ui_events(messages)
    types = [e["type"] for e in events]
    assert types[0] == "start" and events[0]["conversation_id"] == "conv-7"
    assert types[-1] == "complete"
    assert [m.id for m in messages] == [str(i) for i in range(1, len(messages) + 1)]
    steps = [e["step"] for e in events if e["type"] == "progress"]
    assert steps == ["agent_routing", "querying_data", "generating"]
    answer = "".join(e["token"] for e in events if e["type"] == "token")
    assert answer == "There are 4."
    assert [e["channel"] for e in events if e["type"] == "reasoning"] == ["sql_agent"]
    tool_end = next(e for e in events if e["type"] == "tool_end")
    assert tool_end["duration_ms"] == 3.5
    sql = next(e for e in events if e["type"] == "sql")
    assert sql["row_count"] == 1
    complete = events[-1]
    assert complete["response"] == "There are 4."
    assert complete["metadata"]["agent"] == "sql_agent"
    assert complete["stats"]["usage"]["total_tokens"] == 15


async def test_generates_a_conversation_id_and_shows_sources(upstream: FakeUpstream) -> None:
    upstream.script = rag_answer()
    async with running_gateway(gateway_settings(upstream.url)) as gw, aiohttp.ClientSession() as s:
        body = {"message": "What is the warranty?"}
        async with s.post(f"{gw.url}/api/chat/stream", json=body, headers=gw.auth()) as resp:
            events = ui_events(await read_sse(resp))
    generated = events[0]["conversation_id"]
    assert generated.startswith("conv-")
    assert upstream.streams()[0].body["conversation"]["id"] == generated
    sources = next(e for e in events if e["type"] == "sources")
    assert sources["sources"][0]["title"] == "Warranty policy"
    assert events[-1]["metadata"]["context"] == {"sources": ["Warranty policy"]}


async def test_identity_comes_from_the_token_and_client_identity_headers_are_dropped(
    upstream: FakeUpstream,
) -> None:
    upstream.script = sql_answer()
    forged = {
        "X-User-Id": "u-mallory",
        "X-Company-Id": "bluepeak-plumbing",
        "X-Internal-Token": "forged",
        "X-Request-ID": "client-chosen-id-123",
    }
    async with running_gateway(gateway_settings(upstream.url)) as gw, aiohttp.ClientSession() as s:
        headers = {**gw.auth("u-alice", "acme-hvac"), **forged}
        body = {"message": "hi", "conversation_id": "conv-1"}
        async with s.post(f"{gw.url}/api/chat/stream", json=body, headers=headers) as resp:
            assert resp.headers["X-Request-ID"] == "client-chosen-id-123"
            await read_sse(resp)
    seen = upstream.streams()[0]
    assert "x-user-id" not in seen.headers
    assert "x-company-id" not in seen.headers
    assert "x-internal-token" not in seen.headers
    assert seen.headers["x-request-id"] == ["client-chosen-id-123"]
    assert seen.body["conversation"] == {
        "id": "conv-1",
        "user_id": "u-alice",
        "company_id": "acme-hvac",
    }
    (authorization,) = seen.headers["authorization"]
    claims = jwt.decode(
        authorization.removeprefix("Bearer "),
        DEV_INTERNAL_SECRET,
        algorithms=["HS256"],
        audience=INTERNAL_AUDIENCE,
    )
    assert claims["iss"] == "gateway"
    assert (claims["sub"], claims["company_id"]) == ("u-alice", "acme-hvac")
    assert claims["request_id"] == "client-chosen-id-123"
    assert claims["exp"] - claims["iat"] <= 60


async def test_a_malformed_request_id_is_replaced(upstream: FakeUpstream) -> None:
    upstream.script = sql_answer()
    async with running_gateway(gateway_settings(upstream.url)) as gw, aiohttp.ClientSession() as s:
        headers = {**gw.auth(), "X-Request-ID": "bad id\twith spaces"}
        async with s.post(
            f"{gw.url}/api/chat/stream", json={"message": "hi"}, headers=headers
        ) as resp:
            returned = resp.headers["X-Request-ID"]
            await read_sse(resp)
    assert returned != "bad id\twith spaces"
    assert upstream.streams()[0].headers["x-request-id"] == [returned]


async def test_upstream_dying_mid_stream_ends_with_an_error_event(upstream: FakeUpstream) -> None:
    upstream.script = [TokenEvent(channel="final", content="There are"), Die()]
    async with running_gateway(gateway_settings(upstream.url)) as gw:
        events = (await post_stream(gw, {"message": "hi"})).events
    assert events[-1]["type"] == "error"
    assert events[-1]["code"].startswith("UPSTREAM_")
    assert events[-1]["retryable"] is True
    assert not any(e["type"] == "complete" for e in events)


async def test_upstream_refusal_is_an_http_error_before_the_stream(upstream: FakeUpstream) -> None:
    upstream.script = [Refuse(409, "CONVERSATION_BUSY", "That conversation is answering.")]
    async with running_gateway(gateway_settings(upstream.url)) as gw:
        refused = await post_stream(gw, {"message": "hi"})
    assert refused.status == 409
    body = refused.events[0]
    assert body["error"]["code"] == "CONVERSATION_BUSY"
    assert body["error"]["retryable"] is True


async def test_unreachable_upstream_is_a_503(upstream: FakeUpstream) -> None:
    settings = gateway_settings("http://127.0.0.1:9")  # discard port: nothing listens
    async with running_gateway(settings) as gw:
        refused = await post_stream(gw, {"message": "hi"})
    assert refused.status == 503
    assert refused.events[0]["error"]["code"] == "UPSTREAM_UNAVAILABLE"


async def test_idle_streams_get_heartbeat_comments(upstream: FakeUpstream) -> None:
    upstream.script = [Comment(), Hang()]
    settings = gateway_settings(upstream.url, heartbeat_s=0.05)
    async with (
        running_gateway(settings) as gw,
        aiohttp.ClientSession() as s,
        s.post(f"{gw.url}/api/chat/stream", json={"message": "hi"}, headers=gw.auth()) as resp,
    ):
        seen = b""
        async with asyncio.timeout(10):
            while seen.count(b": ping\n\n") < 2:
                seen += await resp.content.readany()
    # An idle run is kept open by comments: the stream neither ended nor failed.
    assert resp.status == 200
    assert b"event: complete" not in seen and b"event: error" not in seen


async def test_client_disconnect_cancels_the_upstream_call_and_frees_the_slot(
    upstream: FakeUpstream,
) -> None:
    upstream.script = [TokenEvent(channel="final", content="Working"), Hang()]
    limiter = WatchedLimiter(LimitsConfig(user_streams=1))
    settings = gateway_settings(upstream.url, resume=False)  # runs end with their client
    async with running_gateway(settings, limiter=limiter) as gw:
        async with aiohttp.ClientSession() as s:
            resp = await s.post(
                f"{gw.url}/api/chat/stream", json={"message": "hi"}, headers=gw.auth()
            )
            while b"Working" not in await resp.content.readany():
                pass
            resp.close()  # the browser tab goes away
        async with asyncio.timeout(10):
            await upstream.disconnected.wait()
            await limiter.released.wait()
        upstream.script = sql_answer()
        again = await post_stream(gw, {"message": "hi again"})
    # The user's only stream slot came back: their next question is answered.
    assert again.status == 200
    assert again.events[-1]["type"] == "complete"


async def test_a_client_that_stops_reading_is_cut_off(upstream: FakeUpstream) -> None:
    big = "x" * 16_384
    upstream.script = [TokenEvent(channel="final", content=big) for _ in range(4000)]
    settings = gateway_settings(upstream.url, write_timeout_s=0.5, resume=False)
    async with running_gateway(settings) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", int(gw.url.rsplit(":", 1)[1]))
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        body = json.dumps({"message": "hi"}).encode()
        writer.write(
            b"POST /api/chat/stream HTTP/1.1\r\nHost: [::1]\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {gw.token()}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        # Never read: the gateway's write deadline must end the run and close the upstream call.
        async with asyncio.timeout(20):
            await upstream.disconnected.wait()
        received = b""
        with contextlib.suppress(ConnectionResetError):
            async with asyncio.timeout(20):
                while chunk := await reader.read(1 << 16):
                    received += chunk
        writer.close()
    assert b"event: complete" not in received
    assert len(received) < 4000 * 16_384


async def test_bad_requests_are_json_errors(upstream: FakeUpstream) -> None:
    settings = gateway_settings(upstream.url, client_max_size=2048)
    async with running_gateway(settings) as gw, aiohttp.ClientSession() as s:
        url = f"{gw.url}/api/chat/stream"
        json_auth = {**gw.auth(), "Content-Type": "application/json"}
        xml_auth = {**gw.auth(), "Content-Type": "application/xml"}
        cases = [
            ({"data": b"{not json", "headers": json_auth}, 400, "INVALID_REQUEST"),
            ({"data": b"[1]", "headers": json_auth}, 400, "INVALID_REQUEST"),
            ({"data": b"<xml/>", "headers": xml_auth}, 415, "UNSUPPORTED_MEDIA_TYPE"),
            ({"json": {"conversation_id": "c1"}, "headers": gw.auth()}, 400, "INVALID_REQUEST"),
            ({"json": {"message": "   "}, "headers": gw.auth()}, 400, "INVALID_REQUEST"),
            ({"json": {"message": "x" * 4000}, "headers": gw.auth()}, 413, "PAYLOAD_TOO_LARGE"),
            ({"json": {"message": "hi"}}, 401, "UNAUTHORIZED"),
            (
                {"json": {"message": "hi"}, "headers": {"Authorization": "Bearer a.b.c"}},
                401,
                "UNAUTHORIZED",
            ),
            ({"json": {"message": "hi", "extra": 1}, "headers": gw.auth()}, 400, "INVALID_REQUEST"),
        ]
        for kwargs, status, code in cases:
            async with s.post(url, **kwargs) as resp:  # type: ignore[arg-type]
                assert resp.status == status, (kwargs, await resp.text())
                body = await resp.json()
                assert body["error"]["code"] == code
                assert body["error"]["request_id"] == resp.headers["X-Request-ID"]
        async with s.get(f"{gw.url}/nowhere") as resp:
            assert resp.status == 404
            assert (await resp.json())["error"]["code"] == "NOT_FOUND"
        async with s.get(url) as resp:
            assert resp.status == 405
            assert (await resp.json())["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert upstream.streams() == []


async def test_a_client_that_stops_at_the_last_event_keeps_its_connection(
    upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The terminal event, the closing (`[DONE]`) and the body's end go out together: a client
    that stops reading at the last event finds the response complete, and its HTTP client puts
    the connection back in its pool instead of closing it (SSE and the AI SDK's stream).

    In one process the client only runs once the gateway has written everything, so it would
    find the body's end anyway: the write that ends the body is also checked to carry the last
    event (with the gateway in another process, a separate end made every such request a new
    connection: `docs/benchmarks.md`)."""
    ends: list[bytes] = []
    write_eof = web.StreamResponse.write_eof

    async def spy(self: web.StreamResponse, data: bytes = b"") -> None:
        ends.append(bytes(data))
        await write_eof(self, data)

    monkeypatch.setattr(web.StreamResponse, "write_eof", spy)
    routes = {
        "/api/chat/stream": ({"message": "How many?", "conversation_id": "conv-7"}, b"complete"),
        "/api/chat": (
            {
                "id": "chat7",
                "messages": [
                    {"id": "m1", "role": "user", "parts": [{"type": "text", "text": "Hi"}]}
                ],
                "trigger": "submit-message",
            },
            b"[DONE]",
        ),
    }
    for path, (body, last) in routes.items():
        upstream.script = sql_answer("conv-7")
        async with (
            running_gateway(gateway_settings(upstream.url)) as gw,
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as s,
        ):
            used = []
            for _ in range(3):
                async with s.post(gw.url + path, json=body, headers=gw.auth()) as resp:
                    assert resp.status == 200
                    assert resp.connection is not None
                    used.append(resp.connection.protocol)
                    async for line in resp.content:
                        if last in line:
                            break  # as SDK clients do: nothing more is read
            assert used[0] is not None and used == [used[0]] * 3, path
        ended_with_data = [end for end in ends if end]  # other responses end with b""
        assert len(ended_with_data) == 3, path
        assert all(end.rstrip().endswith(last) or last in end for end in ended_with_data), path
        ends.clear()
