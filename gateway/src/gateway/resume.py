"""Runs that outlive their connection: a producer task owns the agent's stream and buffers it;
clients follow the buffer, and a client that lost its connection follows it again.

The producer holds the user's stream slot and is charged the run's tokens; it ends when the
run does, when a stop is asked (`stop_run`), or at shutdown. Followers (`relay_run` with no
lease) only write to their client: one that leaves does not end the run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import Final

import structlog
from aiohttp import web

from contracts.agent_api import AgentEvent, ChatRequest, ErrorEvent
from contracts.client import AgentAPIError, EventStream
from contracts.errors import ErrorCode
from gateway.admission import charge_tokens, stream_lease_taken
from gateway.app_state import LIMITER, RUN_STORE, RUN_TASKS, SETTINGS
from gateway.auth import Principal
from gateway.errors import NotFound
from gateway.rate_limit import Lease
from gateway.relay import upstream_error_event
from gateway.run_buffer import RunBuffer, RunMeta, is_terminal
from gateway.runs import STOPPED_EVENT, completed_tokens, open_upstream

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
    task = asyncio.create_task(_produce(app, buffer, source, principal, lease))
    tasks = app[RUN_TASKS]
    tasks[run_id] = task
    task.add_done_callback(lambda _: tasks.pop(run_id, None))
    return meta, buffer.follow()


async def _produce(
    app: web.Application,
    buffer: RunBuffer,
    source: EventStream,
    principal: Principal,
    lease: Lease,
) -> None:
    """Read the agent's stream into the buffer until it ends; then release and charge."""
    settings = app[SETTINGS]
    store = app[RUN_STORE]
    limiter = app[LIMITER]
    renewer = asyncio.create_task(_renew(app, lease))
    tokens = 0
    try:
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
        buffer.append(STOPPED_EVENT)
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
        last = buffer.events[-1] if buffer.events else None
        used = completed_tokens(last.stats) if last is not None and last.event == "complete" else 0
        await asyncio.shield(limiter.release(lease))
        await charge_tokens(limiter, principal, used or tokens)


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


async def stop_run(app: web.Application, meta: RunMeta) -> bool:
    """Stop a run wherever its producer is; whether it was still running."""
    task = app[RUN_TASKS].get(meta.run_id)
    if task is not None:
        task.cancel()
        return True
    return await app[RUN_STORE].request_stop(meta)


async def cancel_runs(app: web.Application) -> None:
    """At shutdown: stop every run this process produces (the agent saves what each had)."""
    tasks = list(app[RUN_TASKS].values())
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
