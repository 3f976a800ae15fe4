"""AgentClient against a scripted fake of the agent service over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from contracts.agent_api import (
    AgentEvent,
    ChatRequest,
    CompleteEvent,
    ConversationHistory,
    ConversationList,
    ErrorEvent,
    RouteDecisionEvent,
    RunStats,
    TokenEvent,
    ToolEndEvent,
    ToolStartEvent,
)
from contracts.client import AgentAPIError, AgentClient, Identity, hs256_token_factory
from contracts.errors import ErrorBody, ErrorDetail
from contracts.internal_token import INTERNAL_AUDIENCE
from contracts.sse import encode_comment, encode_event

SECRET = "test-secret-that-is-long-enough-for-hs256"
ISSUER = "gateway"
STATS = RunStats(
    run_id="run-1", conversation_id="conv-1", route="sql", tokens=2, ttft_ms=1.0, duration_ms=5.0
)
COMPLETE = CompleteEvent(stats=STATS)
NORMAL: list[AgentEvent] = [
    RouteDecisionEvent(route="sql", confidence=0.9, reason="counts"),
    ToolStartEvent(tool="sql", call_id="c1", input="SELECT 1"),
    ToolEndEvent(tool="sql", call_id="c1", status="ok", summary="1 row", duration_ms=2.0),
    TokenEvent(channel="sql_agent", content="thinking"),
    TokenEvent(channel="final", content="Four"),
    TokenEvent(channel="final", content=" technicians."),
    COMPLETE,
]


@dataclass
class FakeAgent:
    """What the fake service saw: request headers per path, and whether a stream was dropped."""

    base_url: str = ""
    headers: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    deleted: list[str] = field(default_factory=list)


AGENT = web.AppKey("agent", FakeAgent)


def _frame(seq: int, event: AgentEvent) -> bytes:
    return encode_event(event.event, event.model_dump_json(), id=seq)


def _identity_of(request: web.Request) -> tuple[str, str]:
    token = request.headers["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience=INTERNAL_AUDIENCE)
    assert claims["iss"] == ISSUER
    assert claims["request_id"] == request.headers["X-Request-ID"]
    return claims["sub"], claims["company_id"]


def _error(status: int, code: str, message: str, **headers: str) -> web.Response:
    body = ErrorBody(error=ErrorDetail(code=code, message=message, retryable=status == 409))
    return web.Response(
        status=status, body=body.model_dump_json(), content_type="application/json", headers=headers
    )


async def _until_gone(resp: web.StreamResponse, agent: FakeAgent, silence_s: float = 0) -> None:
    """Send heartbeats (after `silence_s`) until the client goes away, then record that it did."""
    try:
        await asyncio.sleep(silence_s)
        for _ in range(2000):
            await resp.write(encode_comment("ping"))
            await asyncio.sleep(0.01)
    except ConnectionResetError:
        agent.disconnected.set()
    except asyncio.CancelledError:
        # aiohttp cancels the handler when it sees the connection drop.
        agent.disconnected.set()
        raise


async def chat_stream(request: web.Request) -> web.StreamResponse:
    agent = request.app[AGENT]
    agent.headers.append((request.path, dict(request.headers)))
    _identity_of(request)
    script = (await request.json())["input"]["message"]
    if script == "refuse":
        return _error(409, "CONVERSATION_BUSY", "Busy.", **{"Retry-After": "3"})
    if script == "html":
        return web.Response(status=502, text="<html>bad gateway</html>", content_type="text/html")
    if script == "not-sse":
        return web.json_response({"answer": "hi"})
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    first = _frame(1, NORMAL[4])
    if script == "normal":
        for seq, event in enumerate(NORMAL, 1):
            await resp.write(_frame(seq, event))
    elif script == "trickle":
        # Heartbeats, CRLF line ends and one byte per write: framing must not matter.
        await resp.write(b": hello\r\n\r\n")
        for seq, event in enumerate(NORMAL, 1):
            for byte in _frame(seq, event).replace(b"\n", b"\r\n"):
                await resp.write(bytes([byte]))
    elif script == "huge-token":
        await resp.write(_frame(1, TokenEvent(channel="final", content="x" * 300_000)))
        await resp.write(_frame(2, COMPLETE))
    elif script == "cut":
        await resp.write(first)
        await asyncio.sleep(0.05)
        assert request.transport is not None
        request.transport.close()
    elif script == "eof":
        await resp.write(first)
    elif script == "after-terminal":
        await resp.write(first + _frame(2, COMPLETE) + _frame(3, NORMAL[5]))
        await resp.write(_frame(4, ErrorEvent(code="INTERNAL", message="x")))
    elif script == "agent-error":
        await resp.write(first + _frame(2, ErrorEvent(code="MODEL_TIMEOUT", message="Slow.")))
    elif script == "big":
        await resp.write(first + _frame(2, TokenEvent(channel="final", content="y" * 5000)))
        await _until_gone(resp, agent)
    elif script == "junk":
        await resp.write(first + encode_event("token", "{not json", id=2))
        await _until_gone(resp, agent)
    elif script == "unknown-event":
        await resp.write(first + encode_event("progress", '{"event": "progress", "pct": 5}'))
        await resp.write(_frame(3, COMPLETE))
    elif script == "mislabelled":
        await resp.write(encode_event("token", COMPLETE.model_dump_json()))
    elif script in ("stall", "slow"):
        await resp.write(first)
        # "stall" stays silent (not even heartbeats) for longer than the client waits.
        await _until_gone(resp, agent, 1.0 if script == "stall" else 0)
    return resp


async def chat(request: web.Request) -> web.Response:
    _identity_of(request)
    body = ChatRequest.model_validate(await request.json())
    return web.json_response(
        {"answer": f"echo {body.input.message}", "route": "sql", "stats": STATS.model_dump()}
    )


async def conversations(request: web.Request) -> web.Response:
    user, company = _identity_of(request)
    item = {
        "id": f"{company}.{user}",
        "title": "t",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
        "message_count": 2,
    }
    return web.json_response({"conversations": [item]})


async def conversation(request: web.Request) -> web.Response:
    agent = request.app[AGENT]
    _identity_of(request)
    conv_id = request.match_info["conv_id"]
    if conv_id != "conv-1":
        return _error(404, "NOT_FOUND", "No such conversation.")
    if request.method == "DELETE":
        agent.deleted.append(conv_id)
        return web.Response(status=204)
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    return web.json_response({"id": conv_id, "title": "t", "messages": messages})


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@pytest.fixture
async def agent() -> AsyncIterator[FakeAgent]:
    app = web.Application()
    fake = FakeAgent()
    app[AGENT] = fake
    app.router.add_post("/internal/chat/stream", chat_stream)
    app.router.add_post("/internal/chat", chat)
    app.router.add_get("/internal/conversations", conversations)
    app.router.add_get("/internal/conversations/{conv_id}", conversation)
    app.router.add_delete("/internal/conversations/{conv_id}", conversation)
    app.router.add_get("/healthz", healthz)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    fake.base_url = str(server.make_url("")).rstrip("/")
    yield fake
    await server.close()


ClientMaker = Callable[..., Awaitable[AgentClient]]


@pytest.fixture
async def make_client(agent: FakeAgent) -> AsyncIterator[ClientMaker]:
    made: list[AgentClient] = []

    async def make(**kwargs: Any) -> AgentClient:
        client = AgentClient(
            agent.base_url, token_factory=hs256_token_factory(ISSUER, SECRET), **kwargs
        )
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


def _request(message: str) -> ChatRequest:
    return ChatRequest.model_validate(
        {
            "input": {"message": message},
            "conversation": {"id": "conv-1", "user_id": "user-1", "company_id": "acme"},
        }
    )


async def _collect(client: AgentClient, message: str) -> list[AgentEvent]:
    async with client.stream(_request(message)) as events:
        return [event async for event in events]


async def test_events_arrive_in_order_with_auth_and_request_id(
    agent: FakeAgent, make_client: ClientMaker
) -> None:
    client = await make_client()
    async with client.stream(_request("normal"), request_id="req-42") as events:
        got = [event async for event in events]
    assert got == NORMAL
    path, headers = agent.headers[-1]
    assert path == "/internal/chat/stream"
    assert headers["X-Request-ID"] == "req-42"


async def test_framing_heartbeats_and_crlf_do_not_change_the_events(
    make_client: ClientMaker,
) -> None:
    client = await make_client()
    async with client.stream(_request("trickle")) as events:
        assert [event async for event in events] == NORMAL
        assert events.heartbeats == 1
        assert events.last_event_id == str(len(NORMAL))


async def test_a_line_longer_than_aiohttp_readline_limit_is_read(make_client: ClientMaker) -> None:
    got = await _collect(await make_client(), "huge-token")
    assert got[0] == TokenEvent(channel="final", content="x" * 300_000)
    assert got[1:] == [COMPLETE]


async def test_plain_async_for_also_works(make_client: ClientMaker) -> None:
    client = await make_client()
    assert [event async for event in client.stream(_request("normal"))] == NORMAL


async def test_refusal_raises_with_the_error_body(make_client: ClientMaker) -> None:
    client = await make_client()
    with pytest.raises(AgentAPIError) as info:
        await _collect(client, "refuse")
    assert (info.value.status, info.value.code, info.value.message) == (
        409,
        "CONVERSATION_BUSY",
        "Busy.",
    )
    assert info.value.retryable is True
    assert info.value.retry_after == 3.0


async def test_a_non_json_error_page_still_raises_a_coded_error(make_client: ClientMaker) -> None:
    with pytest.raises(AgentAPIError) as info:
        await _collect(await make_client(), "html")
    assert (info.value.status, info.value.code, info.value.retryable) == (
        502,
        "UPSTREAM_UNAVAILABLE",
        True,
    )


async def test_a_non_stream_response_is_a_protocol_error(make_client: ClientMaker) -> None:
    with pytest.raises(AgentAPIError) as info:
        await _collect(await make_client(), "not-sse")
    assert info.value.code == "UPSTREAM_PROTOCOL_ERROR"


async def test_an_unreachable_service_raises_unavailable() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with AgentClient(
        f"http://127.0.0.1:{port}", token_factory=hs256_token_factory(ISSUER, SECRET)
    ) as client:
        with pytest.raises(AgentAPIError) as info:
            await _collect(client, "normal")
        assert (info.value.code, info.value.retryable) == ("UPSTREAM_UNAVAILABLE", True)
        assert await client.health() is False


@pytest.mark.parametrize(
    ("script", "code", "retryable"),
    [
        ("cut", "UPSTREAM_UNAVAILABLE", True),
        ("eof", "UPSTREAM_PROTOCOL_ERROR", True),
        ("junk", "UPSTREAM_PROTOCOL_ERROR", False),
        ("mislabelled", "UPSTREAM_PROTOCOL_ERROR", False),
    ],
)
async def test_a_broken_stream_ends_with_one_synthetic_error(
    make_client: ClientMaker, script: str, code: str, retryable: bool
) -> None:
    got = await _collect(await make_client(), script)
    if script != "mislabelled":
        assert got[0] == TokenEvent(channel="final", content="Four")
    last = got[-1]
    assert isinstance(last, ErrorEvent)
    assert (last.code, last.retryable) == (code, retryable)
    assert [e for e in got if isinstance(e, ErrorEvent | CompleteEvent)] == [last]


async def test_a_silent_stream_times_out_into_a_synthetic_error(
    agent: FakeAgent, make_client: ClientMaker
) -> None:
    got = await _collect(await make_client(read_timeout_s=0.3), "stall")
    assert got[0] == TokenEvent(channel="final", content="Four")
    assert got[1:] == [
        ErrorEvent(
            code="UPSTREAM_UNAVAILABLE",
            message="The agent service stopped responding.",
            retryable=True,
        )
    ]
    await asyncio.wait_for(agent.disconnected.wait(), 5)


async def test_an_oversized_event_ends_the_stream_and_the_connection(
    agent: FakeAgent, make_client: ClientMaker
) -> None:
    got = await _collect(await make_client(max_event_bytes=1000), "big")
    assert got[0] == TokenEvent(channel="final", content="Four")
    assert isinstance(got[1], ErrorEvent)
    assert got[1].code == "UPSTREAM_PROTOCOL_ERROR"
    assert len(got) == 2
    await asyncio.wait_for(agent.disconnected.wait(), 5)


async def test_nothing_is_yielded_after_a_terminal_event(make_client: ClientMaker) -> None:
    client = await make_client()
    assert await _collect(client, "after-terminal") == [NORMAL[4], COMPLETE]
    got = await _collect(client, "agent-error")
    assert got == [NORMAL[4], ErrorEvent(code="MODEL_TIMEOUT", message="Slow.")]


async def test_unknown_event_types_are_skipped_for_forward_compatibility(
    make_client: ClientMaker,
) -> None:
    client = await make_client()
    async with client.stream(_request("unknown-event")) as events:
        got = [event async for event in events]
        assert events.skipped_events == 1
    assert got == [NORMAL[4], COMPLETE]


@pytest.mark.parametrize("use_context", [True, False])
async def test_cancelling_the_consumer_closes_the_connection(
    agent: FakeAgent, make_client: ClientMaker, use_context: bool
) -> None:
    client = await make_client()
    first = asyncio.Event()

    async def consume() -> None:
        if use_context:
            async with client.stream(_request("slow")) as events:
                async for _ in events:
                    first.set()
        else:
            async for _ in client.stream(_request("slow")):
                first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 5)
    assert not agent.disconnected.is_set()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(agent.disconnected.wait(), 5)


async def test_leaving_the_context_early_closes_the_connection(
    agent: FakeAgent, make_client: ClientMaker
) -> None:
    client = await make_client()
    async with client.stream(_request("slow")) as events:
        async for _ in events:
            break
    await asyncio.wait_for(agent.disconnected.wait(), 5)


async def test_request_response_endpoints(agent: FakeAgent, make_client: ClientMaker) -> None:
    client = await make_client()
    me = Identity(user_id="user-1", company_id="acme")
    answer = await client.chat(_request("hello"))
    assert answer.answer == "echo hello"
    assert answer.stats == STATS
    listing = await client.list_conversations(me)
    assert isinstance(listing, ConversationList)
    assert listing.conversations[0].id == "acme.user-1"  # the identity travelled in the token
    history = await client.get_history(me, "conv-1")
    assert isinstance(history, ConversationHistory)
    assert [m.role for m in history.messages] == ["user", "assistant"]
    await client.delete_conversation(me, "conv-1")
    assert agent.deleted == ["conv-1"]
    with pytest.raises(AgentAPIError) as info:
        await client.get_history(me, "conv-2")
    assert (info.value.status, info.value.code) == (404, "NOT_FOUND")
    assert await client.health() is True


async def test_bad_ids_are_refused_before_any_request(make_client: ClientMaker) -> None:
    client = await make_client()
    me = Identity(user_id="user-1", company_id="acme")
    with pytest.raises(ValueError, match="conversation_id"):
        await client.get_history(me, "../admin")
    with pytest.raises(ValueError, match="user_id"):
        Identity(user_id="a b", company_id="acme")


async def test_a_passed_session_is_not_closed(agent: FakeAgent) -> None:
    async with aiohttp.ClientSession() as session:
        client = AgentClient(
            agent.base_url, session=session, token_factory=hs256_token_factory(ISSUER, SECRET)
        )
        assert await _collect(client, "normal") == NORMAL
        await client.aclose()
        assert not session.closed
        with pytest.raises(RuntimeError, match="closed"):
            await client.chat(_request("hello"))


def test_bad_configuration_is_refused() -> None:
    factory = hs256_token_factory(ISSUER, SECRET)
    with pytest.raises(ValueError, match="base_url"):
        AgentClient("localhost:8000", token_factory=factory)
    with pytest.raises(ValueError, match="timeouts"):
        AgentClient("http://x", token_factory=factory, read_timeout_s=0)
    with pytest.raises(ValueError, match="ttl_s"):
        hs256_token_factory(ISSUER, SECRET, ttl_s=3600)
