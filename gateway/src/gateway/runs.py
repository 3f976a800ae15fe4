"""A run's life in the gateway, shared by every transport: request, relay, metrics, shutdown."""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Final, Protocol

import structlog
from aiohttp import web
from pydantic import ValidationError

from contracts.agent_api import (
    AgentEvent,
    ChatInput,
    ChatRequest,
    CompleteEvent,
    ConversationContext,
    ErrorEvent,
    RunStats,
)
from contracts.client import AgentAPIError, EventStream
from contracts.errors import ErrorCode
from gateway.admission import charge_tokens
from gateway.app_state import AGENT, LIMITER, METRICS, OPEN_STREAMS, RELAY, SETTINGS
from gateway.auth import Principal
from gateway.errors import InvalidRequest, ShuttingDown
from gateway.identity import upstream_identity
from gateway.rate_limit import Lease
from gateway.relay import Relay, RelayResult, Sink
from gateway.request_body import validation_details
from gateway.tracing import mark_run
from gateway.upstream import gateway_error

log = structlog.get_logger("gateway.runs")

SHUTDOWN_EVENT: Final = ErrorEvent(
    code=ErrorCode.SHUTTING_DOWN,
    message="The server is restarting. Please send your message again.",
    retryable=True,
)
Source = EventStream | AsyncGenerator[AgentEvent, None]
"""Where a run's events come from: the agent's stream, or a buffered run's follower."""
STOPPED_EVENT: Final = ErrorEvent(code=ErrorCode.CANCELLED, message="Stopped.", retryable=False)


def new_conversation_id() -> str:
    """A fresh conversation id (valid as a contract `Identifier`)."""
    return f"conv-{uuid.uuid4().hex}"


def new_message_id() -> str:
    """A fresh id for the assistant message of a run."""
    return f"msg-{uuid.uuid4().hex}"


def chat_request(principal: Principal, message: str, conversation_id: str) -> ChatRequest:
    """The internal request of a run; identity from the verified token only (also named on the
    request's span, with the conversation)."""
    identity = upstream_identity(principal)
    mark_run(principal, conversation_id)
    try:
        return ChatRequest(
            input=ChatInput(message=message),
            conversation=ConversationContext(
                id=conversation_id, user_id=identity.user_id, company_id=identity.company_id
            ),
        )
    except ValidationError as exc:
        # The identity always fits (`upstream_identity`), so this is the client's input (a
        # message too long, an invalid conversation id): a 400, never a reason to sign out.
        raise InvalidRequest("The request is invalid.", details=validation_details(exc)) from exc


def refuse_if_closing(app: web.Application) -> None:
    """Refuse new runs once shutdown has begun."""
    if app[OPEN_STREAMS].closing:
        raise ShuttingDown("The server is restarting. Please retry.", retryable=True)


@asynccontextmanager
async def tracked(app: web.Application, relay: Relay, transport: str) -> AsyncIterator[None]:
    """Register a relay for shutdown and count it as an active stream."""
    streams = app[OPEN_STREAMS]
    gauge = app[METRICS].active_streams.labels(transport)
    streams.relays.add(relay)
    gauge.inc()
    if streams.closing:
        # Admitted just before shutdown began: end it like the others.
        relay.interrupt("shutdown", SHUTDOWN_EVENT)
    try:
        yield
    finally:
        streams.relays.discard(relay)
        gauge.dec()
        if not streams.relays:
            streams.drained.set()


async def open_upstream(app: web.Application, chat: ChatRequest, request_id: str) -> EventStream:
    """Send the run to the agent; its refusals (busy, invalid, down) raise `GatewayError` here,
    before the client's stream starts."""
    stream = app[AGENT].stream(chat, request_id=request_id)
    try:
        await stream.open()
    except AgentAPIError as exc:
        raise gateway_error(exc) from exc
    return stream


class OpenedSink(Sink, Protocol):
    """A sink with an opening: what its stream starts with, before the agent says anything."""

    async def open(self) -> None:
        """Start the stream (headers, opening events)."""


def run_reservation(app: web.Application, chat: ChatRequest) -> int:
    """What a run is assumed to cost until its usage says otherwise: the configured prompt
    overhead (system prompt, schema, history, the routing call) plus ~4 characters a token of
    the message. Charged when the client ends a run before its usage is known."""
    message = chat.input.message
    return app[SETTINGS].limit_run_reserve_tokens + math.ceil(len(message) / 4)


async def relay_run(
    app: web.Application,
    *,
    source: Source,
    sink: OpenedSink,
    principal: Principal,
    lease: Lease | None,
    transport: str,
    started: float,
    reserve_tokens: int,
    on_relay: Callable[[Relay], None] | None = None,
) -> RelayResult:
    """Open `sink` and relay one run to it, then record its metrics and charge its tokens
    however it ended (`tokens_used`: the run's usage, or `reserve_tokens` for a run the client
    cut short).

    The `source` is this function's from the moment it is called: it is closed here on every
    ending (the agent sees the client leave), and nowhere else. With no `lease` the source is a
    buffered run's follower (`gateway.resume`): its producer holds the slot and is charged (the
    run's usage when it completes, though every follower left), so nothing is charged here.
    """
    try:
        failed = await _open_sink(app, sink)
        if failed is not None:
            if lease is not None:
                # The run was sent: the model was asked, whether or not the client heard of it.
                await charge_tokens(app[LIMITER], principal, tokens_used(failed, reserve_tokens))
            return failed
        return await _relay(
            app, source, sink, principal, lease, transport, started, reserve_tokens, on_relay
        )
    finally:
        await source.aclose()


async def _open_sink(app: web.Application, sink: OpenedSink) -> RelayResult | None:
    """Open `sink` under the write deadline; how the run ended if that failed."""
    try:
        async with asyncio.timeout(app[SETTINGS].write_timeout_s):
            await sink.open()
    except TimeoutError:
        return RelayResult("slow_client")
    except ConnectionError:
        return RelayResult("client_gone")
    return None


async def _relay(
    app: web.Application,
    source: Source,
    sink: Sink,
    principal: Principal,
    lease: Lease | None,
    transport: str,
    started: float,
    reserve_tokens: int,
    on_relay: Callable[[Relay], None] | None,
) -> RelayResult:
    limiter = app[LIMITER]
    renew = (lambda: limiter.renew(lease)) if lease is not None else None
    relay = Relay(source, sink, app[RELAY], on_heartbeat=renew)
    if on_relay is not None:
        on_relay(relay)
    app[OPEN_STREAMS].drained.clear()
    result: RelayResult | None = None
    try:
        async with tracked(app, relay, transport):
            result = await relay.run()
    finally:
        ended = result if result is not None else relay.result
        if result is None:  # cancelled: the client left (the handler was cancelled)
            ended.ending = "client_gone"
        _record(app, transport, ended, started)
        if lease is not None:
            await charge_tokens(limiter, principal, tokens_used(ended, reserve_tokens))
    return ended


CLIENT_ENDINGS: Final = frozenset({"client_gone", "slow_client", "stopped"})
"""Endings the client chose: the model was asked and its usage never arrives."""


def tokens_used(result: RelayResult, reserve_tokens: int = 0) -> int:
    """What a run costs the company budget: its usage when it completed (prompt and generated
    tokens of every model call, the routing call included); when the client ended it early,
    the reservation or the tokens relayed, whichever is more (hanging up after the first token
    must not make a run nearly free); after a failure of ours (agent error, shutdown), only the
    tokens relayed."""
    if isinstance(result.terminal, CompleteEvent):
        return completed_tokens(result.terminal.stats)
    if result.ending in CLIENT_ENDINGS:
        return max(result.tokens, reserve_tokens)
    return result.tokens


def completed_tokens(stats: RunStats) -> int:
    """A completed run's cost: the model's total usage when reported, else its answer tokens."""
    used = stats.usage.total_tokens if stats.usage and stats.usage.total_tokens else 0
    return used or stats.tokens


def _record(app: web.Application, transport: str, result: RelayResult, started: float) -> None:
    metrics = app[METRICS]
    metrics.stream_endings.labels(transport, result.ending).inc()
    if result.tokens:
        metrics.tokens_relayed.labels(transport).inc(result.tokens)
    if result.first_token_at is not None:
        metrics.time_to_first_token.labels(transport).observe(result.first_token_at - started)
    terminal = result.terminal
    log.info(
        "run_ended",
        transport=transport,
        ending=result.ending,
        code=terminal.code if isinstance(terminal, ErrorEvent) else None,
        tokens=result.tokens,
        duration_ms=round((time.monotonic() - started) * 1000, 1),
    )


async def end_open_streams(app: web.Application) -> None:
    """On shutdown: refuse new runs, end open ones with SHUTTING_DOWN, wait a little for them."""
    streams = app[OPEN_STREAMS]
    streams.closing = True
    for relay in list(streams.relays):
        relay.interrupt("shutdown", SHUTDOWN_EVENT)
    if streams.relays:
        try:
            async with asyncio.timeout(app[SETTINGS].write_timeout_s):
                await streams.drained.wait()
        except TimeoutError:
            log.warning("shutdown_streams_still_open", count=len(streams.relays))
