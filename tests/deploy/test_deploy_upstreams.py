"""The gateway over several agent replicas (GATEWAY_AGENT_URLS): round-robin per call, failover
only to a replica the request never reached, a started stream never replayed elsewhere."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from pydantic import ValidationError
from support.deploy_stack import free_ports

from contracts.agent_api import (
    ChatInput,
    ChatRequest,
    CompleteEvent,
    ConversationContext,
    ErrorEvent,
    RunStats,
    TokenEvent,
)
from contracts.client import AgentAPIError, AgentClient
from contracts.errors import ErrorBody, ErrorDetail
from contracts.sse import encode_event
from gateway.settings import GatewaySettings
from gateway.upstream import agent_client, upstream_session


@dataclass(slots=True)
class FakeAgent:
    """An agent replica that answers every stream one way and counts what reached it."""

    name: str
    behaviour: str = "complete"  # complete | die_after_token | busy
    streams: int = 0
    conversations: list[str] = field(default_factory=list)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        self.streams += 1
        body = ChatRequest.model_validate_json(await request.read())
        self.conversations.append(body.conversation.id)
        if self.behaviour == "busy":
            error = ErrorDetail(code="CONVERSATION_BUSY", message="busy", retryable=True)
            return web.json_response(ErrorBody(error=error).model_dump(mode="json"), status=409)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        token = TokenEvent(channel="final", content=self.name)
        await response.write(encode_event("token", token.model_dump_json(), id=1))
        if self.behaviour == "die_after_token":
            assert request.transport is not None
            request.transport.abort()
            return response
        stats = RunStats(
            run_id="r",
            conversation_id=body.conversation.id,
            route=None,
            tokens=1,
            ttft_ms=1.0,
            duration_ms=1.0,
        )
        complete = CompleteEvent(stats=stats)
        await response.write(encode_event("complete", complete.model_dump_json(), id=2))
        await response.write_eof()
        return response

    async def ready(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})


@asynccontextmanager
async def serving(*agents: FakeAgent) -> AsyncIterator[list[str]]:
    runners = []
    urls = []
    try:
        for agent in agents:
            app = web.Application()
            app.router.add_post("/internal/chat/stream", agent.stream)
            app.router.add_get("/ready", agent.ready)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            runners.append(runner)
            port = runner.addresses[0][1]
            urls.append(f"http://127.0.0.1:{port}")
        yield urls
    finally:
        for runner in runners:
            await runner.cleanup()


def refused_url() -> str:
    """A URL nobody listens on (the port was free a moment ago)."""
    return f"http://127.0.0.1:{free_ports(1)[0]}"


@asynccontextmanager
async def client_for(urls: list[str]) -> AsyncIterator[AgentClient]:
    settings = GatewaySettings(env="development", agent_urls=urls, upstream_connect_timeout_s=2)
    session = upstream_session(settings)
    try:
        yield agent_client(settings, session)
    finally:
        await session.close()


def request(conversation: str) -> ChatRequest:
    return ChatRequest(
        input=ChatInput(message="hi"),
        conversation=ConversationContext(id=conversation, user_id="u-1", company_id="acme-hvac"),
    )


async def run(client: AgentClient, conversation: str) -> list[object]:
    async with client.stream(request(conversation)) as events:
        return [event async for event in events]


async def test_calls_go_round_robin_over_the_replicas() -> None:
    one, two = FakeAgent("one"), FakeAgent("two")
    async with serving(one, two) as urls, client_for(urls) as client:
        assert len(client.base_urls) == 2
        for i in range(4):
            events = await run(client, f"c{i}")
            assert isinstance(events[-1], CompleteEvent)
    assert one.conversations == ["c0", "c2"]
    assert two.conversations == ["c1", "c3"]


async def test_a_refusing_replica_is_skipped_and_the_call_succeeds() -> None:
    alive = FakeAgent("alive")
    async with serving(alive) as urls, client_for([refused_url(), *urls]) as client:
        for i in range(3):
            events = await run(client, f"c{i}")
            assert isinstance(events[0], TokenEvent) and events[0].content == "alive"
            assert isinstance(events[-1], CompleteEvent)
        assert await client.health()
    assert alive.streams == 3


async def test_when_every_replica_refuses_the_caller_gets_upstream_unavailable() -> None:
    async with client_for([refused_url(), refused_url()]) as client:
        with pytest.raises(AgentAPIError) as refused:
            await run(client, "c1")
        assert not await client.health()
    assert refused.value.status == 503
    assert refused.value.code == "UPSTREAM_UNAVAILABLE"


async def test_a_stream_that_started_is_never_replayed_on_another_replica() -> None:
    dying, other = FakeAgent("dying", "die_after_token"), FakeAgent("other")
    async with serving(dying, other) as urls, client_for(urls) as client:
        events = await run(client, "c1")
    assert isinstance(events[0], TokenEvent) and events[0].content == "dying"
    assert isinstance(events[-1], ErrorEvent) and events[-1].code.startswith("UPSTREAM_")
    assert other.streams == 0


async def test_a_replica_that_answered_with_a_refusal_is_not_asked_again_elsewhere() -> None:
    busy, other = FakeAgent("busy", "busy"), FakeAgent("other")
    async with serving(busy, other) as urls, client_for(urls) as client:
        with pytest.raises(AgentAPIError) as refused:
            await run(client, "c1")
    assert refused.value.status == 409 and refused.value.code == "CONVERSATION_BUSY"
    assert other.streams == 0


def test_agent_urls_come_from_the_environment_and_win_over_agent_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEWAY_AGENT_URL", "http://single:8001")
    assert GatewaySettings(env="development").agent_base_urls == ("http://single:8001",)
    monkeypatch.setenv("GATEWAY_AGENT_URLS", " http://a:8001 , http://b:8001,")
    assert GatewaySettings(env="development").agent_base_urls == ("http://a:8001", "http://b:8001")


@pytest.mark.parametrize("bad", ["a:8001", "ftp://a:8001", "http://a:8001,b:8001"])
def test_agent_urls_that_are_not_http_are_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    monkeypatch.setenv("GATEWAY_AGENT_URLS", bad)
    with pytest.raises(ValidationError, match="http"):
        GatewaySettings()


async def test_one_url_keeps_the_plain_client() -> None:
    settings = GatewaySettings(env="development", agent_url="http://127.0.0.1:8001")
    async with aiohttp.ClientSession() as session:
        client = agent_client(settings, session)
    assert type(client) is AgentClient
