"""A run: one question through the graph, as an ordered stream of SSE frames.

The graph runs in a producer task feeding a bounded queue; the response drains the queue, batching
whatever is ready into one write, and sends a comment heartbeat when nothing came for a while.
Cancelling the response (the client went away) cancels the producer and so the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import structlog
from langgraph.checkpoint.base import BaseCheckpointSaver

from agent_service.errors import AgentError, RunFailed
from agent_service.graph.builder import AgentGraph
from agent_service.graph.state import RunContext, TurnRecord, utc_now
from agent_service.metrics import AgentMetrics
from agent_service.providers.base import TenantContext
from agent_service.runs.registry import thread_key
from agent_service.storage.checkpoints import keep_latest_checkpoint
from contracts.agent_api import ChatResponse, Route, RunStats, Source, ToolEndEvent
from contracts.errors import RETRYABLE_CODES, ErrorCode
from contracts.sse import encode_comment, encode_event

log = structlog.get_logger("agent_service.runs.runner")

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_HEARTBEAT = encode_comment("heartbeat")
_END = b""
CANCEL_GRACE_S = 5.0
"""How long a cancelled run may take to unwind (close model calls) before it is abandoned."""


@dataclass(slots=True)
class RunOutcome:
    """What a run produced, for the non-streaming endpoint and for logs."""

    answer: list[str] = field(default_factory=list)
    tools: list[ToolEndEvent] = field(default_factory=list)
    stats: RunStats | None = None
    error: tuple[str, str, bool] | None = None


@dataclass(frozen=True, slots=True)
class RunLimits:
    run_timeout_s: float
    heartbeat_s: float
    stall_timeout_s: float
    buffer_events: int


class Runner:
    """Turns a question into SSE frames through the graph."""

    def __init__(
        self,
        graph: AgentGraph,
        make_context: Callable[[TenantContext], RunContext],
        limits: RunLimits,
        metrics: AgentMetrics,
    ) -> None:
        self._graph = graph
        self._make_context = make_context
        self._limits = limits
        self._metrics = metrics
        self._background: set[asyncio.Task[None]] = set()
        """Releases scheduled by cancelled runs (a reference keeps them from being collected)."""

    async def frames(
        self,
        tenant: TenantContext,
        message: str,
        outcome: RunOutcome | None = None,
        before_end: Callable[[], Awaitable[None]] | None = None,
    ) -> AsyncIterator[bytes]:
        """Yield the SSE frames of one run; exactly one terminal frame, unless cancelled.

        `before_end` is awaited just before the terminal frame (the conversation is free again
        by the time a client reads `complete`)."""
        started = time.perf_counter()
        run_id = f"run-{uuid.uuid4().hex}"
        ctx = self._make_context(tenant)
        config: Any = {"configurable": {"thread_id": thread_key(tenant)}, "recursion_limit": 16}
        seq = 0
        tokens = 0
        ttft_ms: float | None = None
        route: Route | None = None
        meta: dict[str, Any] = {}
        metrics = self._metrics
        metrics.runs_started.inc()
        status = "cancelled"
        try:
            async with asyncio.timeout(self._limits.run_timeout_s):
                # durability="exit": one checkpoint write per run, not one per step; under
                # load every write waits its turn on the checkpointer's single connection
                async for raw in self._graph.astream(
                    {"question": message},
                    config,
                    context=ctx,
                    stream_mode="custom",
                    durability="exit",
                ):
                    # the tuples our nodes write (graph/nodes.py), typed by langgraph as a dict
                    chunk = cast(tuple[Any, ...], raw)
                    kind = chunk[0]
                    if kind == "token":
                        channel, content = chunk[1], chunk[2]
                        if channel == "final":
                            tokens += 1
                            if ttft_ms is None:
                                ttft_ms = (time.perf_counter() - started) * 1000
                                metrics.ttft.observe(ttft_ms / 1000)
                            if outcome is not None:
                                outcome.answer.append(content)
                        seq += 1
                        yield (
                            f"id: {seq}\nevent: token\ndata: "
                            f'{{"event":"token","channel":"{channel}","content":{_dumps(content)}}}\n\n'
                        ).encode()
                    elif kind == "event":
                        payload = chunk[1]
                        name = payload["event"]
                        if name == "route_decision":
                            route = payload["route"]
                        elif name == "tool_end":
                            metrics.tool_calls.labels(payload["tool"], payload["status"]).inc()
                            if outcome is not None:
                                outcome.tools.append(ToolEndEvent.model_validate(payload))
                        seq += 1
                        yield encode_event(name, _dumps(payload), seq)
                    elif kind == "meta":
                        meta.update(chunk[1])
            stats = RunStats(
                run_id=run_id,
                conversation_id=tenant.conversation_id,
                route=route,
                tokens=tokens,
                ttft_ms=None if ttft_ms is None else round(ttft_ms, 2),
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                usage=ctx.usage.to_usage()
                if ctx.usage.prompt_tokens or ctx.usage.completion_tokens
                else None,
                sql=meta.get("sql"),
                row_count=meta.get("row_count"),
                truncated=meta.get("truncated"),
                sources=[Source(**s) for s in meta["sources"]] if "sources" in meta else None,
            )
            if outcome is not None:
                outcome.stats = stats
            status = "ok"
            seq += 1
            await self._prune(config)
            if before_end is not None:
                await before_end()
            yield encode_event(
                "complete", '{"event":"complete","stats":' + stats.model_dump_json() + "}", seq
            )
        except TimeoutError:
            status = "timeout"
            seq += 1
            if before_end is not None:
                await before_end()
            yield self._error_frame(
                seq, ErrorCode.RUN_TIMEOUT, "the reply took too long and was stopped", outcome
            )
        except AgentError as exc:  # RunFailed, or a store that went away mid-run
            status = "error"
            seq += 1
            if before_end is not None:
                await before_end()
            yield self._error_frame(seq, ErrorCode(exc.code), exc.message, outcome)
        except asyncio.CancelledError:
            raise
        except Exception:
            status = "error"
            log.exception("run_failed", run_id=run_id)
            seq += 1
            if before_end is not None:
                await before_end()
            yield self._error_frame(
                seq, ErrorCode.INTERNAL, "the agent failed to answer; please try again", outcome
            )
        finally:
            metrics.runs_finished.labels(status).inc()
            metrics.tokens_streamed.inc(tokens)
            log.info(
                "run_finished",
                run_id=run_id,
                status=status,
                route=route,
                tokens=tokens,
                ttft_ms=ttft_ms and round(ttft_ms, 1),
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
            )

    async def record_question(self, tenant: TenantContext, message: str) -> None:
        """Store the question in the conversation's memory before its run starts, so a run that
        is stopped, fails or dies with its process (kill -9) still leaves it in the history."""
        config: Any = {"configurable": {"thread_id": thread_key(tenant)}}
        turn: TurnRecord = {"role": "user", "content": message, "at": utc_now()}
        await self._graph.aupdate_state(config, {"turns": [turn]}, as_node="classify")

    async def _prune(self, config: Any) -> None:
        checkpointer = self._graph.checkpointer
        if isinstance(checkpointer, BaseCheckpointSaver):
            await keep_latest_checkpoint(checkpointer, config["configurable"]["thread_id"])

    @staticmethod
    def _error_frame(seq: int, code: ErrorCode, message: str, outcome: RunOutcome | None) -> bytes:
        retryable = code in RETRYABLE_CODES
        if outcome is not None:
            outcome.error = (code, message, retryable)
        payload = {"event": "error", "code": code.value, "message": message, "retryable": retryable}
        return encode_event("error", _dumps(payload), seq)

    async def sse_body(
        self, tenant: TenantContext, message: str, on_done: Callable[[], Awaitable[None]]
    ) -> AsyncIterator[bytes]:
        """The response body: frames through a bounded queue, with heartbeats and batching."""
        limits = self._limits
        queue: asyncio.Queue[bytes] = asyncio.Queue(limits.buffer_events)

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

        async def produce() -> None:
            ended = False
            try:
                async for frame in self.frames(tenant, message, before_end=release):
                    if queue.full():
                        # the reader is not keeping up: wait, but not forever
                        await asyncio.wait_for(queue.put(frame), limits.stall_timeout_s)
                    else:
                        queue.put_nowait(frame)
                # the reader is still reading: the end marker waits for room like any frame,
                # so a complete stream never loses a frame
                await asyncio.wait_for(queue.put(_END), limits.stall_timeout_s)
                ended = True
            except TimeoutError:
                log.warning("stream_stalled", conversation_id=tenant.conversation_id)
            finally:
                if not released:
                    # cancelled or stalled: hand the conversation back without awaiting here
                    task = asyncio.create_task(release())
                    self._background.add(task)
                    task.add_done_callback(self._background.discard)
                if not ended:
                    # cancelled or stalled: nobody reads the rest, so the end may take a slot;
                    # the stream then lacks its terminal event, which readers report as cut
                    if queue.full():
                        queue.get_nowait()
                    queue.put_nowait(_END)

        producer = asyncio.create_task(produce())
        self._metrics.active_streams.inc()
        try:
            while True:
                try:
                    async with asyncio.timeout(limits.heartbeat_s):
                        frame = await queue.get()
                except TimeoutError:
                    yield _HEARTBEAT
                    continue
                if frame is _END:
                    return
                if queue.empty():
                    yield frame
                    continue
                batch = [frame]
                while not queue.empty():
                    item = queue.get_nowait()
                    if item is _END:
                        yield b"".join(batch)
                        return
                    batch.append(item)
                yield b"".join(batch)
        finally:
            if not producer.done():
                producer.cancel()
                # Wait for the run to unwind, shielded: Starlette's cancel scope re-cancels this
                # task on every loop turn, and a re-cancel reaching the producer mid-cleanup
                # would leave LangGraph's node tasks (and their model calls) running.
                # Bounded: a node that ignores cancellation must not pin this response forever.
                loop = asyncio.get_running_loop()
                deadline = loop.time() + CANCEL_GRACE_S
                while not producer.done() and loop.time() < deadline:
                    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                        await asyncio.wait_for(asyncio.shield(producer), deadline - loop.time())
                if not producer.done():
                    log.error("run_ignored_cancellation", conversation_id=tenant.conversation_id)
                self._metrics.runs_cancelled.inc()
            self._metrics.active_streams.dec()

    async def collect(self, tenant: TenantContext, message: str) -> ChatResponse:
        """Run to the end and return the answer (the non-streaming endpoint)."""
        outcome = RunOutcome()
        async for _ in self.frames(tenant, message, outcome):
            pass
        if outcome.error is not None:
            code, msg, _retryable = outcome.error
            raise RunFailed(
                ErrorCode(code), msg, status=504 if code == ErrorCode.RUN_TIMEOUT else 502
            )
        assert outcome.stats is not None
        return ChatResponse(
            answer="".join(outcome.answer),
            route=outcome.stats.route,
            stats=outcome.stats,
            tools=outcome.tools,
        )
