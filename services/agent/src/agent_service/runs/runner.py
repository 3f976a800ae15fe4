"""A run: one question through the graph, as typed events (`run_events`), as SSE frames for the
streaming endpoint (`sse_body`), or folded into one answer (`collect`).

The graph runs in the task that reads the run (`inline.InlineSteps`): what the nodes emitted
since that task last woke goes out in one write, with no producer task or queue between the
graph and the socket.
The response (`sse_response.EventStreamResponse`) keeps one timer per stream for heartbeats and
the write deadline. Cancelling the response (the client went away) cancels the run where it
waits, and closing the body lets it unwind.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import structlog
from langgraph.checkpoint.base import BaseCheckpointSaver
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from agent_service.errors import RunFailed
from agent_service.graph.builder import AgentGraph
from agent_service.graph.state import RunContext, TurnRecord, utc_now
from agent_service.metrics import AgentMetrics
from agent_service.providers.base import TenantContext
from agent_service.runs.events import (
    RunEvent,
    RunMeta,
    TerminalEvent,
    Token,
)
from agent_service.runs.inline import InlineSteps
from agent_service.runs.registry import thread_key
from agent_service.runs.sse import FinalBytes, encode_frame
from agent_service.runs.tally import RunTally, error_event, merge_meta
from agent_service.storage.checkpoints import keep_latest_checkpoint
from agent_service.storage.sqlite.conversations import (
    ConversationOwnership,
    SqliteConversationStore,
    count_message,
)
from agent_service.storage.sqlite.memory import ThreadSqliteSaver
from contracts.agent_api import (
    ChatResponse,
    CompleteEvent,
    ToolEndEvent,
)
from contracts.errors import ErrorCode
from contracts.tracing import CONVERSATION_ATTR, MESSAGE_ATTR, TENANT_ATTR, USER_ATTR

log = structlog.get_logger("agent_service.runs.runner")

_TERMINAL = frozenset({"complete", "error"})
_TURN_WRITER = "finalize"
"""The node a turn added outside a run is written as: its only edge is to the end, so the
update leaves nothing to run next. (As `classify`, LangGraph also ran the routing branch on the
old state and planned its next step: a third more CPU per question, 1.27-1.38 ms against
0.82-0.89 ms in-process, for a plan the next run discards.)"""


@dataclass(frozen=True, slots=True)
class RunLimits:
    run_timeout_s: float
    heartbeat_s: float
    stall_timeout_s: float
    buffer_events: int


def run_attributes(tenant: TenantContext, run_id: str) -> dict[str, str]:
    """A run span's attributes: who and which conversation, never what was asked."""
    return {
        TENANT_ATTR: tenant.company_id,
        USER_ATTR: tenant.user_id,
        CONVERSATION_ATTR: tenant.conversation_id,
        "app.run_id": run_id,
    }


class Runner:
    """Turns a question into SSE frames through the graph."""

    def __init__(
        self,
        graph: AgentGraph,
        make_context: Callable[[TenantContext], RunContext],
        limits: RunLimits,
        metrics: AgentMetrics,
        *,
        capture_content: bool = False,
    ) -> None:
        self._graph = graph
        self._capture_content = capture_content
        """Whether the run's span carries the user's message (off: message text is user data)."""
        self._make_context = make_context
        self._limits = limits
        self._metrics = metrics
        self._background: set[asyncio.Task[None]] = set()
        """Releases scheduled by cancelled runs (a reference keeps them from being collected)."""

    async def run_events(
        self,
        tenant: TenantContext,
        message: str,
        before_end: Callable[[], Awaitable[None]] | None = None,
    ) -> AsyncIterator[RunEvent]:
        """Yield the events of one run in order; exactly one terminal event, unless cancelled.

        `before_end` is awaited just before the terminal event (the conversation is free again
        by the time a client reads `complete`)."""
        async with contextlib.aclosing(self.run_batches(tenant, message, before_end)) as batches:
            async for batch in batches:
                for event in batch:
                    yield event

    async def run_batches(
        self,
        tenant: TenantContext,
        message: str,
        before_end: Callable[[], Awaitable[None]] | None = None,
    ) -> AsyncGenerator[list[RunEvent], None]:
        """`run_events`, each list holding what the nodes emitted since the reader last woke (one
        model read, a node's events): the graph runs in the task that reads this
        (`InlineSteps`)."""
        started = time.perf_counter()
        run_id = f"run-{uuid.uuid4().hex}"
        ctx = self._make_context(tenant)
        ctx.deadline = asyncio.get_running_loop().time() + self._limits.run_timeout_s
        # Started, not made current: this generator may be closed from another context.
        span = ctx.tracer.start_span("agent.run", attributes=run_attributes(tenant, run_id))
        if self._capture_content:
            span.set_attribute(MESSAGE_ATTR, message)
        ctx.trace = trace.set_span_in_context(span)
        config: Any = {"configurable": {"thread_id": thread_key(tenant)}, "recursion_limit": 16}
        tally = RunTally(started, self._metrics)
        metrics = self._metrics
        metrics.runs_started.inc()
        status = "cancelled"
        out = ctx.out
        # ainvoke, not astream: the nodes emit to `out` and wake this task (InlineSteps), not
        # through LangGraph's stream writer. durability="exit": one checkpoint write per run,
        # not one per step; under load every write waits its turn on the checkpointer's single
        # connection.
        steps = InlineSteps(
            self._graph.ainvoke({"question": message}, config, context=ctx, durability="exit"),
            out,
        )
        ctx.notify = steps.notify
        try:
            terminal: TerminalEvent
            try:
                async with asyncio.timeout(self._limits.run_timeout_s):
                    ended = False
                    while not ended:
                        ended = await steps
                        batch: list[RunEvent] = []
                        for item in out:
                            if isinstance(item, Token):
                                if item.channel == "final":
                                    tally.final_token()
                                batch.append(item)
                            elif isinstance(item, RunMeta):
                                tally.meta = merge_meta(tally.meta, item)
                            else:
                                tally.event(item)
                                batch.append(item)
                        out.clear()
                        if batch:
                            yield batch
                terminal = CompleteEvent(stats=tally.stats(run_id, tenant, ctx))
                status = "ok"
                await self._prune(config)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                terminal = error_event(exc, run_id)
                status = "timeout" if terminal.code == ErrorCode.RUN_TIMEOUT else "error"
            if before_end is not None:
                await before_end()
            yield [terminal]
        finally:
            # closed while the graph was paused: it stops where it waits, and unwinds
            await steps.cancel()
            span.set_attribute("app.run_status", status)
            if status not in ("ok", "cancelled"):
                span.set_status(Status(StatusCode.ERROR, status))
            span.end()
            metrics.runs_finished.labels(status).inc()
            metrics.tokens_streamed.inc(tally.tokens)
            log.info(
                "run_finished",
                run_id=run_id,
                status=status,
                route=tally.route,
                tokens=tally.tokens,
                ttft_ms=tally.ttft_ms and round(tally.ttft_ms, 1),
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
            )

    async def record_question(
        self, tenant: TenantContext, message: str, conversations: ConversationOwnership
    ) -> None:
        """Store the question in the conversation's memory and count it in `conversations`
        before its run starts, so a run that is stopped, fails or dies with its process
        (kill -9) still leaves it in the history, and the history and the list's count agree.
        On the embedded memory both are one transaction on its thread; otherwise memory first
        (a failure in between over-counts nothing)."""
        turn: TurnRecord = {"role": "user", "content": message, "at": utc_now()}
        saver = self._graph.checkpointer
        if (
            isinstance(saver, ThreadSqliteSaver)
            and isinstance(conversations, SqliteConversationStore)
            and conversations.memory is saver.memory
        ):
            await self._add_turn(
                tenant, turn, then=partial(count_message, tenant=tenant, message=message)
            )
            return
        await self._add_turn(tenant, turn)
        await conversations.record_message(tenant, message)

    async def record_stopped(self, tenant: TenantContext, answer: str) -> None:
        """Store a stopped run's partial answer, marked `stopped`, so the history shows what the
        user saw (called before the conversation is released)."""
        turn: TurnRecord = {
            "role": "assistant",
            "content": answer,
            "stopped": True,
            "at": utc_now(),
        }
        await self._add_turn(tenant, turn)

    async def _add_turn(
        self,
        tenant: TenantContext,
        turn: TurnRecord,
        then: Callable[[sqlite3.Connection], object] | None = None,
    ) -> None:
        """Append `turn` to the conversation's memory; on the embedded memory `then(conn)` runs
        in the same transaction (`then` is for the embedded memory only)."""
        config: Any = {"configurable": {"thread_id": thread_key(tenant)}}
        update = {"turns": [turn]}
        graph = self._graph
        saver = graph.checkpointer
        if isinstance(saver, ThreadSqliteSaver):
            # the embedded memory: the whole update (read, apply, store) as one unit on its
            # thread, through the graph's sync path, instead of a read and a write each
            # awaited from this loop (a third less CPU, and none of it on the loop)
            def unit() -> None:
                with saver.transaction() as conn:
                    graph.update_state(config, update, as_node=_TURN_WRITER)
                    if then is not None:
                        then(conn)

            await saver.memory.run(unit)
        else:
            assert then is None, "`then` runs on the embedded memory's connection"
            await graph.aupdate_state(config, update, as_node=_TURN_WRITER)

    async def _prune(self, config: Any) -> None:
        checkpointer = self._graph.checkpointer
        if isinstance(checkpointer, BaseCheckpointSaver):
            await keep_latest_checkpoint(checkpointer, config["configurable"]["thread_id"])

    async def sse_body(
        self, tenant: TenantContext, message: str, on_done: Callable[[], Awaitable[None]]
    ) -> AsyncIterator[bytes]:
        """The response body: the run's frames, what is ready at once in one chunk; the last
        chunk (the terminal event) as `FinalBytes`. The run runs in the task that reads this
        (no producer task or queue); heartbeats and the write deadline are the response's."""
        released = False

        async def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            try:
                await on_done()
            except Exception:
                log.exception("run_release_failed", conversation_id=tenant.conversation_id)

        answer: list[str] = []

        async def stopped() -> None:
            # The partial answer first, then the conversation is free: a reload shows it.
            try:
                await self.record_stopped(tenant, "".join(answer))
            except Exception:
                log.exception("stopped_answer_not_saved", conversation_id=tenant.conversation_id)
            await release()

        ended = False
        seq = 0
        self._metrics.active_streams.inc()
        try:
            batches_of = self.run_batches(tenant, message, before_end=release)
            async with contextlib.aclosing(batches_of) as batches:
                async for batch in batches:
                    frames = []
                    for event in batch:
                        if type(event) is Token and event.channel == "final":
                            answer.append(event.content)
                        seq += 1
                        frames.append(encode_frame(event, seq))
                    chunk = frames[0] if len(frames) == 1 else b"".join(frames)
                    last = batch[-1]
                    if not isinstance(last, Token) and last.event in _TERMINAL:
                        ended = True
                        # the body ends right after it: one write with the response's end
                        yield FinalBytes(chunk)
                        return
                    yield chunk
        finally:
            if not released:
                # stopped or cut: save what was answered and hand the conversation back,
                # without awaiting here
                task = asyncio.create_task(stopped())
                self._background.add(task)
                task.add_done_callback(self._background.discard)
            if not ended:
                self._metrics.runs_cancelled.inc()
            self._metrics.active_streams.dec()

    async def collect(self, tenant: TenantContext, message: str) -> ChatResponse:
        """Run to the end and return the answer (the non-streaming endpoint)."""
        answer: list[str] = []
        tools: list[ToolEndEvent] = []
        async for event in self.run_events(tenant, message):
            if isinstance(event, Token):
                if event.channel == "final":
                    answer.append(event.content)
            elif event.event == "tool_end":
                tools.append(event)
            elif event.event == "complete":
                stats = event.stats
                return ChatResponse(
                    answer="".join(answer), route=stats.route, stats=stats, tools=tools
                )
            elif event.event == "error":
                code = ErrorCode(event.code)
                status = {ErrorCode.RUN_TIMEOUT: 504, ErrorCode.UPSTREAM_UNAVAILABLE: 503}
                raise RunFailed(code, event.message, status=status.get(code, 502))
        raise AssertionError("a run ends with a terminal event unless cancelled")
