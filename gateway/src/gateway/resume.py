"""Runs that outlive their connection: a producer task owns the agent's stream and buffers it;
clients follow the buffer, and a client that lost its connection follows it again.

The producer holds the user's stream slot and is charged the run's tokens; it ends when the
run does, when a stop is asked (`stop_run`), or at shutdown. Followers (`relay_run` with no
lease) only write to their client: one that leaves does not end the run, which is then charged
its real usage when it completes. A run the user stopped is charged like one a client cut short
without resume: its reservation or the tokens relayed, whichever is more (`runs.tokens_used`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import Final

import structlog
from aiohttp import web

from contracts.agent_api import AgentEvent, ChatRequest, CompleteEvent, ErrorEvent
from contracts.client import AgentAPIError, EventStream
from contracts.errors import ErrorCode
from gateway.admission import charge_tokens, stream_lease_taken
from gateway.app_state import LIMITER, RUN_PRODUCERS, RUN_STORE, SETTINGS
from gateway.auth import Principal
from gateway.errors import NotFound
from gateway.rate_limit import Lease
from gateway.relay import upstream_error_event
from gateway.run_buffer import Producer, RunBuffer, RunMeta, is_terminal
from gateway.runs import (
    SHUTDOWN_EVENT,
    STOPPED_EVENT,
    completed_tokens,
    open_upstream,
    run_reservation,
)

log = structlog.get_logger("gateway.resume")

TOO_LONG_EVENT: Final = ErrorEvent(
    code=ErrorCode.INTERNAL,
    message="The answer grew past what this server keeps for one run.",
    retryable=False,
)
CUT_EVENT: Final = ErrorEvent(
    code=ErrorCode.UPSTREAM_PROTOCOL_ERROR,
    message="The answer was cut off. Please try again.",
    retryable=True,
)


def resumable(app: web.Application) -> bool:
    """Whether runs of the resumable transports are buffered and outlive their connection."""
    return app[SETTINGS].resume_enabled


async def start_buffered_run(
    app: web.Application,
    principal: Principal,
    chat: ChatRequest,
    *,
    run_id: str,
    transport: str,
    request_id: str,
) -> tuple[RunMeta, AsyncGenerator[AgentEvent, None]]:
    """Take a stream slot, open the agent's stream and hand both to a producer task; the run's
    events to follow. Refusals (limits, busy, down) raise here, before any stream starts."""
    lease = await stream_lease_taken(app, principal)
    try:
        source = await open_upstream(app, chat, request_id)
    except BaseException:
        await app[LIMITER].release(lease)
        raise
    meta = RunMeta(
        run_id=run_id,
        company_id=principal.company_id,
        user_id=principal.user_id,
        conversation_id=chat.conversation.id,
        transport=transport,
        request_id=request_id,
    )
    store = app[RUN_STORE]
    buffer = store.begin(meta)
    producer = Producer()
    reserve = run_reservation(app, chat)
    producer.task = asyncio.create_task(
        _produce(app, buffer, source, principal, lease, producer, reserve)
    )
    producers = app[RUN_PRODUCERS]
    producers[run_id] = producer
    producer.task.add_done_callback(lambda _: producers.pop(run_id, None))
    return meta, buffer.follow()


async def _produce(
    app: web.Application,
    buffer: RunBuffer,
    source: EventStream,
    principal: Principal,
    lease: Lease,
    producer: Producer,
    reserve_tokens: int,
) -> None:
    """Read the agent's stream into the buffer until it ends; then release and charge."""
    settings = app[SETTINGS]
    store = app[RUN_STORE]
    limiter = app[LIMITER]
    renewer = asyncio.create_task(_renew(app, lease))
    tokens = 0
    producer.started = True
    try:
        if producer.ended_by is not None:  # stopped before this task's first step
            raise asyncio.CancelledError
        max_events = settings.resume_max_events
        async for event in source:
            if len(buffer.events) >= max_events:
                buffer.append(TOO_LONG_EVENT)
                break
            if event.event == "token":
                tokens += 1
            buffer.append(event)
            store.flushed(buffer)
            if is_terminal(event):
                break
        else:
            buffer.append(CUT_EVENT)
    except asyncio.CancelledError:
        buffer.append(SHUTDOWN_EVENT if producer.ended_by == "shutdown" else STOPPED_EVENT)
        raise
    except Exception as exc:
        if not isinstance(exc, AgentAPIError | OSError | TimeoutError):
            log.exception("upstream_read_failed")
        buffer.append(upstream_error_event(exc))
    finally:
        buffer.end()
        store.flushed(buffer)
        renewer.cancel()
        # Closing the agent's stream is what stops the run there (and saves its partial answer).
        with contextlib.suppress(Exception):
            await asyncio.shield(source.aclose())
        await asyncio.shield(limiter.release(lease))
        await charge_tokens(limiter, principal, _cost(buffer, producer, tokens, reserve_tokens))


def _cost(buffer: RunBuffer, producer: Producer, tokens: int, reserve_tokens: int) -> int:
    """What a buffered run costs: its usage when it completed (with or without a client); when
    the user stopped it, its reservation or the tokens it made, whichever is more (its usage
    never arrives); after a failure of ours (agent error, shutdown), the tokens it made."""
    last = buffer.events[-1] if buffer.events else None
    if isinstance(last, CompleteEvent):
        return completed_tokens(last.stats)
    if producer.ended_by == "stop":
        return max(tokens, reserve_tokens)
    return tokens


async def _renew(app: web.Application, lease: Lease) -> None:
    """Keep the run's stream slot while it runs (its followers may all be gone)."""
    limiter = app[LIMITER]
    interval = app[SETTINGS].heartbeat_s
    while True:
        await asyncio.sleep(interval)
        try:
            await limiter.renew(lease)
        except Exception:  # the lease TTL covers a failed renewal
            log.warning("lease_renew_failed", exc_info=True)


async def find_run(app: web.Application, principal: Principal, run_id: str) -> RunMeta:
    """A buffered run of the principal's; another user's or company's answers as missing."""
    meta = await app[RUN_STORE].find(run_id) if run_id else None
    if meta is None or not meta.owned_by(principal):
        raise NotFound("No such run to resume (it ended too long ago, or never was).")
    return meta


def stop_local_run(app: web.Application, run_id: str) -> bool:
    """Stop a run this replica produces (the user asked); whether it was running here."""
    producer = app[RUN_PRODUCERS].get(run_id)
    if producer is None:
        return False
    producer.end("stop")
    return True


async def stop_run(app: web.Application, meta: RunMeta) -> bool:
    """Stop a run wherever its producer is; whether it was still running."""
    if stop_local_run(app, meta.run_id):
        return True
    return await app[RUN_STORE].request_stop(meta)


async def cancel_runs(app: web.Application) -> None:
    """At shutdown: end every run this process produces (the agent saves what each had)."""
    producers = list(app[RUN_PRODUCERS].values())
    for producer in producers:
        producer.end("shutdown")
    tasks = [p.task for p in producers if p.task is not None]
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
