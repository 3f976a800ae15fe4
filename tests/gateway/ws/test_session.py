"""`/ws/chat`: auth three ways, origin and deadline checks, turns, stop, close codes, shutdown."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from support.gateway_harness import Gateway, Hang, gateway_settings, running_gateway, sql_answer

from contracts.agent_api import TokenEvent
from contracts.ui_events import WS_SERVER_MESSAGE_ADAPTER
from gateway.ws import frames
from gateway.ws.frames import text_frame

pytestmark = pytest.mark.usefixtures("upstream")


async def receive(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    """The next server message, checked against the public message schema."""
    msg = await asyncio.wait_for(ws.receive(), 10)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    data: dict[str, Any] = json.loads(msg.data)
    WS_SERVER_MESSAGE_ADAPTER.validate_python(data)
    return data


async def receive_turn(ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
    """Messages up to and including the turn's `complete` or `error`."""
    out = []
    while True:
        data = await receive(ws)
        out.append(data)
        if data["type"] in ("complete", "error"):
            return out


async def closed_with(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    """Read until the server closes; its close code."""
    while True:
        msg = await asyncio.wait_for(ws.receive(), 10)
        if msg.type == aiohttp.WSMsgType.CLOSE:
            return int(msg.data)  # the code the server sent (close_code may be 1006 if it left)
        if msg.type == aiohttp.WSMsgType.CLOSED:
            return ws.close_code
        if msg.type == aiohttp.WSMsgType.ERROR:
            return ws.close_code


async def ask(ws: aiohttp.ClientWebSocketResponse, text: str, **extra: Any) -> None:
    await ws.send_json({"type": "message", "message": text, **extra})


async def test_auth_by_header_then_a_full_turn(upstream: Any) -> None:
    upstream.script = sql_answer("python-session-1")
    async with (
        running_gateway(gateway_settings(upstream.url)) as gw,
        aiohttp.ClientSession() as s,
        s.ws_connect(gw.ws_url, headers=gw.auth()) as ws,
    ):
        hello = await receive(ws)
        assert hello["type"] == "auth_success"
        assert hello["user"] == {"id": "u-alice", "company_id": "acme-hvac"}
        await ask(ws, "How many technicians are active?", session_id="python-session-1")
        events = await receive_turn(ws)
    assert events[0]["type"] == "start" and events[0]["session_id"] == "python-session-1"
    assert [e["step"] for e in events if e["type"] == "progress"] == [
        "agent_routing",
        "querying_data",
        "generating",
    ]
    assert "".join(e["token"] for e in events if e["type"] == "token") == "There are 4."
    complete = events[-1]
    assert complete["type"] == "complete"
    assert complete["response"] == "There are 4."
    assert complete["session_id"] == "python-session-1"
    assert complete["metadata"]["agent"] == "sql_agent"
    assert upstream.streams()[0].body["conversation"]["id"] == "python-session-1"


async def test_auth_by_subprotocol_echoes_the_app_protocol(upstream: Any) -> None:
    async with running_gateway(gateway_settings(upstream.url)) as gw, aiohttp.ClientSession() as s:
        offered = ("chat.v1", f"bearer.{gw.token()}")
        async with s.ws_connect(gw.ws_url, protocols=offered) as ws:
            assert ws.protocol == "chat.v1"
            assert (await receive(ws))["type"] == "auth_success"
        bearer_only = f"bearer.{gw.token()}"
        async with s.ws_connect(gw.ws_url, protocols=(bearer_only,)) as ws:
            assert ws.protocol == bearer_only  # the only one offered: echoed back
            assert (await receive(ws))["type"] == "auth_success"


async def test_auth_by_first_message_and_by_query_in_development(upstream: Any) -> None:
    async with running_gateway(gateway_settings(upstream.url)) as gw, aiohttp.ClientSession() as s:
        async with s.ws_connect(gw.ws_url) as ws:
            await ws.send_json({"type": "ping"})
            assert (await receive(ws))["type"] == "pong"
            await ask(ws, "too early")
            early = await receive(ws)
            assert (early["type"], early["code"]) == ("error", "AUTH_REQUIRED")
            await ws.send_json({"type": "auth", "token": gw.token("u-bob", "bluepeak-plumbing")})
            success = await receive(ws)
            assert success["user"]["company_id"] == "bluepeak-plumbing"
        async with s.ws_connect(f"{gw.ws_url}?token={gw.token()}") as ws:
            assert (await receive(ws))["type"] == "auth_success"


async def test_query_tokens_are_ignored_when_disabled(upstream: Any) -> None:
    settings = gateway_settings(upstream.url, ws_query_token=False, ws_auth_timeout_s=0.3)
    async with (
        running_gateway(settings) as gw,
        aiohttp.ClientSession() as s,
        s.ws_connect(f"{gw.ws_url}?token={gw.token()}") as ws,
    ):
        reply = await receive(ws)
        assert reply["type"] == "auth_error"
        assert await closed_with(ws) == 4401


async def test_bad_tokens_get_auth_error_and_4401(upstream: Any) -> None:
    async with running_gateway(gateway_settings(upstream.url)) as gw, aiohttp.ClientSession() as s:
        async with s.ws_connect(gw.ws_url) as ws:
            await ws.send_json({"type": "auth", "token": "not-a-jwt"})
            reply = await receive(ws)
            assert (reply["type"], reply["code"]) == ("auth_error", "UNAUTHORIZED")
            assert await closed_with(ws) == 4401
        async with s.ws_connect(gw.ws_url, headers={"Authorization": "Bearer x.y.z"}) as ws:
            assert (await receive(ws))["type"] == "auth_error"
            assert await closed_with(ws) == 4401


async def test_auth_deadline(upstream: Any) -> None:
    settings = gateway_settings(upstream.url, ws_auth_timeout_s=0.2)
    async with (
        running_gateway(settings) as gw,
        aiohttp.ClientSession() as s,
        s.ws_connect(gw.ws_url) as ws,
    ):
        reply = await receive(ws)
        assert reply["type"] == "auth_error"
        assert "auth message" in reply["message"]
        assert await closed_with(ws) == 4401


async def test_origin_allow_list(upstream: Any) -> None:
    settings = gateway_settings(upstream.url, cors_origins="https://app.example")
    async with running_gateway(settings) as gw, aiohttp.ClientSession() as s:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await s.ws_connect(gw.ws_url, headers={**gw.auth(), "Origin": "https://evil.example"})
        assert refused.value.status == 403
        for origin in ("https://app.example", gw.url):  # allow-listed, and the gateway's own
            good = {**gw.auth(), "Origin": origin}
            async with s.ws_connect(gw.ws_url, headers=good) as ws:
                assert (await receive(ws))["type"] == "auth_success"


@pytest.mark.parametrize(
    ("host", "origin", "allowed"),
    [
        # Behind a TLS-terminating proxy: the browser says https, the gateway sees plain HTTP.
        ("chat.example.com", "https://chat.example.com", True),
        ("chat.example.com:443", "https://chat.example.com", True),
        ("chat.example.com", "http://chat.example.com", True),
        ("Chat.Example.com", "https://chat.example.com", True),
        ("chat.example.com", "https://chat.example.com:8443", False),
        ("chat.example.com:8443", "https://chat.example.com", False),
        ("chat.example.com", "https://evil.example", False),
        ("chat.example.com", "null", False),
    ],
)
async def test_same_origin_behind_tls_termination(
    upstream: Any, host: str, origin: str, allowed: bool
) -> None:
    settings = gateway_settings(
        upstream.url, cors_origins="", dev_allowed_hosts="chat.example.com,localhost,127.0.0.1"
    )
    async with running_gateway(settings) as gw, aiohttp.ClientSession() as s:
        headers = {**gw.auth(), "Host": host, "Origin": origin}
        if allowed:
            async with s.ws_connect(gw.ws_url, headers=headers) as ws:
                assert (await receive(ws))["type"] == "auth_success"
        else:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await s.ws_connect(gw.ws_url, headers=headers)
            assert refused.value.status == 403


async def test_stop_cancels_the_run_and_the_socket_takes_another_turn(upstream: Any) -> None:
    upstream.script = [TokenEvent(channel="final", content="Thinking"), Hang()]
    async with (
        running_gateway(gateway_settings(upstream.url)) as gw,
        aiohttp.ClientSession() as s,
        s.ws_connect(gw.ws_url, headers=gw.auth()) as ws,
    ):
        await receive(ws)
        await ask(ws, "a long one")
        while (await receive(ws))["type"] != "token":
            pass
        await ask(ws, "a second one while busy")
        busy = await receive(ws)
        assert (busy["type"], busy["code"]) == ("error", "CONVERSATION_BUSY")
        assert busy["retryable"] is True
        await ws.send_json({"type": "stop"})
        stopped = await receive_turn(ws)
        assert (stopped[-1]["type"], stopped[-1]["code"]) == ("error", "CANCELLED")
        async with asyncio.timeout(10):
            await upstream.disconnected.wait()
        upstream.script = sql_answer()
        await ask(ws, "How many technicians are active?")
        assert (await receive_turn(ws))[-1]["type"] == "complete"
        await ask(ws, "And again?")
        assert (await receive_turn(ws))[-1]["type"] == "complete"
    request_ids = [r.headers["x-request-id"][0] for r in upstream.streams()]
    assert [rid.rsplit(".", 1)[1] for rid in request_ids] == ["1", "2", "3"]
    assert len({rid.rsplit(".", 1)[0] for rid in request_ids}) == 1  # the socket's own id


async def test_stop_before_the_answer_starts_cancels_the_turn(upstream: Any) -> None:
    upstream.script = [TokenEvent(channel="final", content="Thinking"), Hang()]
    upstream.stream_gate = asyncio.Event()
    async with (
        running_gateway(gateway_settings(upstream.url)) as gw,
        aiohttp.ClientSession() as s,
        s.ws_connect(gw.ws_url, headers=gw.auth()) as ws,
    ):
        await receive(ws)
        await ask(ws, "a long one")
        async with asyncio.timeout(10):
            await upstream.stream_requested.wait()  # the gateway is opening the upstream call
        await ws.send_json({"type": "stop"})
        await ws.send_json({"type": "ping"})
        assert (await receive(ws))["type"] == "pong"  # the stop has been read
        upstream.stream_gate.set()
        turn = await receive_turn(ws)
        assert (turn[-1]["type"], turn[-1]["code"]) == ("error", "CANCELLED")
        assert not [e for e in turn if e["type"] in ("token", "complete")]
        async with asyncio.timeout(10):
            await upstream.disconnected.wait()
        upstream.script = sql_answer()
        upstream.stream_gate = None
        await ask(ws, "How many technicians are active?")  # the next turn is not stopped
        assert (await receive_turn(ws))[-1]["type"] == "complete"


async def test_client_closing_mid_turn_cancels_upstream(upstream: Any) -> None:
    settings = gateway_settings(upstream.url, resume=False)  # runs end with their client
    upstream.script = [TokenEvent(channel="final", content="Thinking"), Hang()]
    async with running_gateway(settings) as gw, aiohttp.ClientSession() as s:
        async with s.ws_connect(gw.ws_url, headers=gw.auth()) as ws:
            await receive(ws)
            await ask(ws, "a long one")
            while (await receive(ws))["type"] != "token":
                pass
        async with asyncio.timeout(10):
            await upstream.disconnected.wait()


async def test_bad_messages_and_close_codes(upstream: Any) -> None:
    settings = gateway_settings(upstream.url, ws_max_msg_size=2048)
    async with running_gateway(settings) as gw, aiohttp.ClientSession() as s:
        async with s.ws_connect(gw.ws_url, headers=gw.auth()) as ws:
            await receive(ws)
            await ws.send_str("{not json")
            assert (await receive(ws))["code"] == "INVALID_REQUEST"
            await ws.send_json({"type": "dance"})
            assert (await receive(ws))["code"] == "INVALID_REQUEST"
            await ask(ws, "   ")
            assert (await receive(ws))["code"] == "EMPTY_MESSAGE"
            await ask(ws, "hi", session_id="../etc/passwd")
            assert (await receive(ws))["code"] == "INVALID_REQUEST"
            await ws.send_str(json.dumps({"type": "message", "message": "x" * 4096}))
            assert await closed_with(ws) == 1009
        async with s.ws_connect(gw.ws_url, headers=gw.auth()) as ws:
            await receive(ws)
            await ws.close()
            assert ws.close_code == 1000
        async with s.ws_connect(gw.ws_url, headers=gw.auth()) as ws:
            await receive(ws)
            other = gw.token("u-bob", "bluepeak-plumbing")
            await ws.send_json({"type": "auth", "token": other})
            assert (await receive(ws))["code"] == "FORBIDDEN"
            assert await closed_with(ws) == 4403


async def test_shutdown_ends_runs_and_closes_sockets_with_1001(upstream: Any) -> None:
    upstream.script = [TokenEvent(channel="final", content="Thinking"), Hang()]
    async with running_gateway(gateway_settings(upstream.url)) as gw, aiohttp.ClientSession() as s:
        idle = await s.ws_connect(gw.ws_url, headers=gw.auth())
        busy = await s.ws_connect(gw.ws_url, headers=gw.auth())
        await receive(idle)
        await receive(busy)
        await ask(busy, "a long one")
        while (await receive(busy))["type"] != "token":
            pass
        sse = await s.post(f"{gw.url}/api/chat/stream", json={"message": "x"}, headers=gw.auth())
        while b"Thinking" not in await sse.content.readany():
            pass
        shutdown = asyncio.create_task(stop(gw))
        last = (await receive_turn(busy))[-1]
        assert (last["type"], last["code"], last["retryable"]) == ("error", "SHUTTING_DOWN", True)
        assert await closed_with(busy) == 1001
        assert await closed_with(idle) == 1001
        tail = await sse.content.read()
        assert b"event: error" in tail and b"SHUTTING_DOWN" in tail
        await shutdown
        await idle.close()
        await busy.close()
        sse.close()


async def stop(gw: Gateway) -> None:
    """What SIGTERM does: stop listening, run on_shutdown, wait for handlers, clean up."""
    await gw.runner.cleanup()


async def test_the_seed_python_client_works_unchanged(
    upstream: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    upstream.script = sql_answer("python-session-1")
    async with running_gateway(gateway_settings(upstream.url)) as gw:
        await seed_chat_stream(gw.ws_url, gw.token())
    out = capsys.readouterr().out
    assert "Authenticated!" in out
    assert "There are 4." in out
    assert "Response: There are 4." in out
    assert "Agent: sql_agent" in out
    assert "[agent_routing] Routing your question…" in out


async def seed_chat_stream(uri: str, token: str) -> None:
    """The seed document's Python client, verbatim except for its URI and token."""
    import websockets

    async with websockets.connect(uri) as websocket:
        # Authenticate
        await websocket.send(json.dumps({"type": "auth", "token": token}))

        # Wait for auth response
        auth_response = await websocket.recv()
        auth_data = json.loads(auth_response)

        if auth_data["type"] != "auth_success":
            print("Authentication failed")  # noqa: T201
            return

        print("Authenticated!")  # noqa: T201

        # Send message
        await websocket.send(
            json.dumps(
                {
                    "type": "message",
                    "message": "What is the engine power?",
                    "session_id": "python-session-1",
                }
            )
        )

        # Receive responses
        accumulated = ""

        async for message in websocket:
            data = json.loads(message)

            if data["type"] == "progress":
                print(f"[{data['step']}] {data['message']}")  # noqa: T201

            elif data["type"] == "token":
                print(data["token"], end="", flush=True)  # noqa: T201
                accumulated += data["token"]

            elif data["type"] == "complete":
                print("\n\nComplete!")  # noqa: T201
                print(f"Response: {data['response']}")  # noqa: T201
                print(f"Agent: {data['metadata']['agent']}")  # noqa: T201
                break

            elif data["type"] == "error":
                print(f"Error: {data['error']}")  # noqa: T201
                break


# Tokens of every frame-length class (RFC 6455 §5.2: 7-bit, 16-bit and 64-bit lengths, and the
# edges between them), and text that is longer in UTF-8 than in characters.
_WORDS = ("", "a", "x" * 110, "y" * 111, "é" * 70, "z" * 65_520, "w" * 70_000, "ok ✓")


@pytest.mark.parametrize("compress", [0, 15], ids=["plain", "permessage-deflate"])
async def test_a_batch_of_tokens_arrives_as_one_message_each(
    upstream: Any, compress: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The upstream sends the whole answer at once, so the gateway writes it as batches (one
    socket write each on a plain socket, frame by frame through aiohttp on a compressed one)."""
    framed: list[int] = []

    def counting(payload: bytes) -> bytes:
        framed.append(len(payload))
        return text_frame(payload)

    monkeypatch.setattr(frames, "text_frame", counting)
    upstream.script = sql_answer("conv-frames", words=_WORDS)
    async with (
        running_gateway(gateway_settings(upstream.url, ws_compress=bool(compress))) as gw,
        aiohttp.ClientSession() as s,
        s.ws_connect(gw.ws_url, headers=gw.auth(), compress=compress, max_msg_size=0) as ws,
    ):
        assert ws.compress == compress  # negotiated as configured
        assert (await receive(ws))["type"] == "auth_success"
        for _ in range(2):  # the socket stays in step for the next turn
            await ask(ws, "How many technicians are active?", partial_response=True)
            events = await receive_turn(ws)
            tokens = [e for e in events if e["type"] == "token"]
            assert [e["token"] for e in tokens] == list(_WORDS)
            # each token carries the answer up to and including itself
            assert [e["partial_response"] for e in tokens] == [
                "".join(_WORDS[: i + 1]) for i in range(len(_WORDS))
            ]
            assert events[-1]["type"] == "complete"
            assert events[-1]["response"] == "".join(_WORDS)
    # the plain socket took the one-write path for the batches; the compressed one never did
    assert (len(framed) >= len(_WORDS)) if not compress else not framed


async def test_compression_is_declined_unless_configured(upstream: Any) -> None:
    """A client offering permessage-deflate (as browsers do) gets plain frames by default."""
    upstream.script = sql_answer("conv-plain")
    async with (
        running_gateway(gateway_settings(upstream.url)) as gw,
        aiohttp.ClientSession() as s,
        s.ws_connect(gw.ws_url, headers=gw.auth(), compress=15) as ws,
    ):
        assert ws.compress == 0
        assert (await receive(ws))["type"] == "auth_success"
        await ask(ws, "How many technicians are active?")
        assert (await receive_turn(ws))[-1]["type"] == "complete"
