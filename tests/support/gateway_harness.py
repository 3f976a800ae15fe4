"""Test helpers for the gateway: a scripted fake agent service and a gateway on 127.0.0.1:0.

`FakeUpstream` speaks the internal contract (SSE frames with `id:`/`event:`/`data:`, comment
heartbeats) from a per-request script, records every request's headers and body, and sets
`disconnected` when its client goes away mid-stream. `running_gateway` runs `create_app` the way
the CLI does (`handler_cancellation=True`) and is meant for reuse by end-to-end tests.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from opentelemetry.sdk.trace import TracerProvider

from contracts.agent_api import (
    AgentEvent,
    ChatResponse,
    CompleteEvent,
    ConversationHistory,
    ConversationList,
    ConversationSummary,
    HistoryMessage,
    RouteDecisionEvent,
    RunStats,
    Source,
    TokenEvent,
    ToolEndEvent,
    ToolStartEvent,
    Usage,
)
from contracts.errors import RETRYABLE_CODES, ErrorBody, ErrorDetail
from contracts.sse import SSEDecoder, SSEMessage, encode_comment, encode_event
from gateway.app import create_app
from gateway.auth import mint_dev_token
from gateway.rate_limit import InProcessLimiter, Lease, Limiter
from gateway.settings import GatewaySettings


@dataclass(frozen=True)
class Comment:
    """Send an SSE comment (a heartbeat)."""


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Die:
    """Drop the connection mid-stream (no terminal event)."""


@dataclass(frozen=True)
class Hang:
    """Stop sending and wait until the client goes away."""


@dataclass(frozen=True)
class Gate:
    """Wait until the test opens this gate, then go on with the script."""

    event: asyncio.Event


@dataclass(frozen=True)
class Refuse:
    """Refuse the request before streaming, with this status and error code."""

    status: int
    code: str
    message: str = "refused"


Step = AgentEvent | Comment | Sleep | Die | Hang | Gate | Refuse


@dataclass
class Recorded:
    path: str
    method: str
    headers: dict[str, list[str]]
    body: Any


@dataclass
class FakeUpstream:
    """A scripted agent service; set `script` (used for every stream) before the request."""

    script: Sequence[Step] = ()
    ready: bool = True
    requests: list[Recorded] = field(default_factory=list)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    stream_started: asyncio.Event = field(default_factory=asyncio.Event)
    chat_started: asyncio.Event = field(default_factory=asyncio.Event)
    stream_requested: asyncio.Event = field(default_factory=asyncio.Event)
    stream_gate: asyncio.Event | None = None
    """When set, a stream's response starts only once this event is set."""
    chat_gate: asyncio.Event | None = None
    """When set, `/internal/chat` answers only once this event is set."""
    url: str = ""

    async def _record(self, request: web.Request) -> None:
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            body = json.loads(raw) if raw else None
        headers: dict[str, list[str]] = {}
        for key, value in request.headers.items():
            headers.setdefault(key.lower(), []).append(value)
        self.requests.append(Recorded(request.path, request.method, headers, body))

    def streams(self) -> list[Recorded]:
        """The recorded stream requests."""
        return [r for r in self.requests if r.path == "/internal/chat/stream"]

    async def stream(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        script = list(self.script)
        if script and isinstance(script[0], Refuse):
            return _error(script[0])
        self.stream_requested.set()
        if self.stream_gate is not None:
            await self.stream_gate.wait()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        self.stream_started.set()
        seq = 0
        try:
            for step in script:
                if isinstance(step, Comment):
                    await response.write(encode_comment("heartbeat"))
                elif isinstance(step, Sleep):
                    await asyncio.sleep(step.seconds)
                elif isinstance(step, Die):
                    assert request.transport is not None
                    request.transport.abort()
                    return response
                elif isinstance(step, Hang):
                    await asyncio.sleep(3600)
                elif isinstance(step, Gate):
                    await step.event.wait()
                elif isinstance(step, Refuse):
                    raise AssertionError("Refuse must come first")
                else:
                    seq += 1
                    await response.write(encode_event(step.event, step.model_dump_json(), id=seq))
            await response.write_eof()
        except (asyncio.CancelledError, ConnectionError):
            self.disconnected.set()
            raise
        return response

    async def chat(self, request: web.Request) -> web.Response:
        await self._record(request)
        if self.script and isinstance(self.script[0], Refuse):
            return _error(self.script[0])
        self.chat_started.set()
        if self.chat_gate is not None:
            await self.chat_gate.wait()
        complete = next(s for s in self.script if isinstance(s, CompleteEvent))
        answer = "".join(
            s.content for s in self.script if isinstance(s, TokenEvent) and s.channel == "final"
        )
        tools = [s for s in self.script if isinstance(s, ToolEndEvent)]
        response = ChatResponse(
            answer=answer, route=complete.stats.route, stats=complete.stats, tools=tools
        )
        return web.Response(text=response.model_dump_json(), content_type="application/json")

    async def conversations(self, request: web.Request) -> web.Response:
        await self._record(request)
        found = ConversationList(
            conversations=[
                ConversationSummary(
                    id="conv-known",
                    title="Active technicians",
                    created_at="2026-01-01T00:00:00Z",
                    updated_at="2026-01-01T00:01:00Z",
                    message_count=2,
                )
            ]
        )
        return web.Response(text=found.model_dump_json(), content_type="application/json")

    async def conversation(self, request: web.Request) -> web.Response:
        await self._record(request)
        if request.match_info["id"] != "conv-known":
            return _error(Refuse(404, "NOT_FOUND", "No such conversation."))
        if request.method == "DELETE":
            return web.Response(status=204)
        history = ConversationHistory(
            id="conv-known",
            title="Active technicians",
            messages=[
                HistoryMessage(role="user", content="How many technicians are active?"),
                HistoryMessage(role="assistant", content="There are 4.", route="sql"),
            ],
        )
        return web.Response(text=history.model_dump_json(), content_type="application/json")

    async def ready_handler(self, request: web.Request) -> web.Response:
        del request
        return web.json_response({"ready": self.ready}, status=200 if self.ready else 503)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/internal/chat/stream", self.stream)
        app.router.add_post("/internal/chat", self.chat)
        app.router.add_get("/internal/conversations", self.conversations)
        app.router.add_get("/internal/conversations/{id}", self.conversation)
        app.router.add_delete("/internal/conversations/{id}", self.conversation)
        app.router.add_get("/ready", self.ready_handler)
        return app


def _error(refusal: Refuse) -> web.Response:
    retryable = refusal.code in {c.value for c in RETRYABLE_CODES}
    body = ErrorBody(
        error=ErrorDetail(code=refusal.code, message=refusal.message, retryable=retryable)
    )
    return web.Response(
        status=refusal.status, text=body.model_dump_json(), content_type="application/json"
    )


@asynccontextmanager
async def serve(
    app: web.Application, **runner_kwargs: Any
) -> AsyncIterator[tuple[str, web.AppRunner]]:
    """Run an aiohttp app on 127.0.0.1:0; yields its base URL and runner."""
    runner = web.AppRunner(app, handler_cancellation=True, **runner_kwargs)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", runner
    finally:
        if runner.server is not None:  # a test may have shut it down already
            await runner.cleanup()


@asynccontextmanager
async def fake_upstream() -> AsyncIterator[FakeUpstream]:
    """A running fake agent service."""
    fake = FakeUpstream()
    async with serve(fake.app()) as (url, _):
        fake.url = url
        yield fake


def gateway_settings(agent_url: str, **overrides: Any) -> GatewaySettings:
    """Development settings pointing at `agent_url`, with test-friendly timings."""
    values: dict[str, Any] = {
        "env": "development",
        "agent_url": agent_url,
        "heartbeat_s": 5.0,
        "write_timeout_s": 2.0,
    }
    values.update(overrides)
    return GatewaySettings(**values)


@dataclass
class Gateway:
    url: str
    runner: web.AppRunner
    settings: GatewaySettings

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws/chat"

    @property
    def app(self) -> web.Application:
        return self.runner.app

    def token(self, user_id: str = "u-alice", company_id: str = "acme-hvac") -> str:
        return mint_dev_token(self.settings.jwt_config(), user_id=user_id, company_id=company_id)

    def auth(self, user_id: str = "u-alice", company_id: str = "acme-hvac") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user_id, company_id)}"}


@asynccontextmanager
async def running_gateway(
    settings: GatewaySettings,
    *,
    limiter: Limiter | None = None,
    shutdown_timeout: float = 5.0,
    tracer_provider: TracerProvider | None = None,
) -> AsyncIterator[Gateway]:
    """`create_app(settings)` served on 127.0.0.1:0 like the CLI serves it."""
    app = create_app(settings, limiter=limiter, tracer_provider=tracer_provider)
    async with serve(app, shutdown_timeout=shutdown_timeout) as (url, runner):
        yield Gateway(url, runner, settings)


# --- scripts and readers ---


def stats(**overrides: Any) -> RunStats:
    values: dict[str, Any] = {
        "run_id": "run-1",
        "conversation_id": "conv-1",
        "route": "sql",
        "tokens": 3,
        "ttft_ms": 12.0,
        "duration_ms": 40.0,
        "usage": Usage(prompt_tokens=10, completion_tokens=5, total_tokens=15),
        "sql": "SELECT count(*) FROM technicians WHERE active = 1",
        "row_count": 1,
    }
    values.update(overrides)
    return RunStats(**values)


def sql_answer(
    conversation_id: str = "conv-1", words: Sequence[str] = ("There", " are", " 4.")
) -> list[Step]:
    """A data answer: route, tool, reasoning, answer tokens, complete."""
    return [
        RouteDecisionEvent(route="sql", confidence=0.9, reason="counts live in the data"),
        ToolStartEvent(tool="sql_query", call_id="call-1", input="SELECT count(*) ..."),
        Comment(),
        ToolEndEvent(
            tool="sql_query", call_id="call-1", status="ok", summary="1 row", duration_ms=3.5
        ),
        TokenEvent(channel="sql_agent", content="Counting active technicians."),
        *[TokenEvent(channel="final", content=w) for w in words],
        CompleteEvent(stats=stats(conversation_id=conversation_id, tokens=len(words))),
    ]


def rag_answer(conversation_id: str = "conv-1") -> list[Step]:
    """A document answer with sources."""
    return [
        RouteDecisionEvent(route="rag", confidence=0.8, reason="policy question"),
        ToolStartEvent(tool="document_search", call_id="call-9", input="warranty"),
        ToolEndEvent(
            tool="document_search",
            call_id="call-9",
            status="ok",
            summary="2 passages",
            duration_ms=2,
        ),
        TokenEvent(channel="final", content="Warranty is 1 year."),
        CompleteEvent(
            stats=stats(
                conversation_id=conversation_id,
                route="rag",
                sql=None,
                row_count=None,
                tokens=1,
                sources=[
                    Source(doc_id="d1", title="Warranty policy", chunk_id="c1", snippet="1 year")
                ],
            )
        ),
    ]


async def read_sse(response: aiohttp.ClientResponse) -> list[SSEMessage]:
    """Every SSE event of a response, to its end."""
    decoder = SSEDecoder()
    out: list[SSEMessage] = []
    async for chunk in response.content.iter_any():
        out.extend(decoder.feed(chunk))
    return out


def ui_events(messages: Sequence[SSEMessage]) -> list[dict[str, Any]]:
    """The JSON of each SSE event (checking that `event:` names its `type`)."""
    out = []
    for message in messages:
        data = json.loads(message.data)
        assert message.event == data["type"]
        out.append(data)
    return out


@dataclass
class Streamed:
    status: int
    headers: dict[str, str]
    events: list[dict[str, Any]]


async def post_stream(
    gw: Gateway, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Streamed:
    """POST /api/chat/stream and read the whole answer (or the JSON error body)."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{gw.url}/api/chat/stream", json=body, headers=headers or gw.auth()) as resp,
    ):
        if resp.status != 200:
            return Streamed(resp.status, dict(resp.headers), [await resp.json()])
        return Streamed(resp.status, dict(resp.headers), ui_events(await read_sse(resp)))


class WatchedLimiter(InProcessLimiter):
    """The in-process limiter, telling a test when a stream slot has been given back."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.released = asyncio.Event()

    async def release(self, lease: Lease) -> None:
        await super().release(lease)
        self.released.set()
