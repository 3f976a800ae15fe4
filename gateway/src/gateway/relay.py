"""Relaying one run from the agent to one client: buffering, heartbeats, write deadlines, endings.

A pump task reads the agent's events into a bounded queue (so a slow client slows the agent down,
and memory stays bounded); the caller's task is the only writer. Idle gaps become heartbeats,
every write has a deadline, and whatever happens the run ends with exactly one terminal event on
the client side or the client is gone. Cancelling the caller (client disconnect with
`handler_cancellation`) cancels the pump; closing the upstream is the caller's
(`gateway.runs.relay_run`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol

import aiohttp
import structlog

from contracts.agent_api import AgentEvent, CompleteEvent, ErrorEvent, TokenEvent
from contracts.client import AgentAPIError
from contracts.errors import ErrorCode

log = structlog.get_logger("gateway.relay")

Ending = Literal["complete", "error", "client_gone", "slow_client", "stopped", "shutdown"]


class Sink(Protocol):
    """Where a run's events go: one transport's rendering of them."""

    async def send(self, events: Sequence[AgentEvent]) -> None:
        """Map and write events, in one write where the transport allows (raises if the client
        is gone)."""

    async def heartbeat(self) -> None:
        """Write something harmless so idle connections stay open and dead ones are noticed."""


@dataclass(frozen=True, slots=True)
class RelayConfig:
    heartbeat_s: float
    write_timeout_s: float
    buffer_events: int
    max_batch: int = 64


@dataclass(slots=True)
class RelayResult:
    """How a run ended, for limits, metrics and logs."""

    ending: Ending
    terminal: CompleteEvent | ErrorEvent | None = None
    tokens: int = 0
    first_token_at: float | None = None


class _Signal:
    """Items of the relay's queue that are not agent events."""


class _End(_Signal):
    """The agent stream ended (without a terminal event if none was seen)."""


class _Wake(_Signal):
    """Look at the interrupt flag."""


class _Tick(_Signal):
    """The connection has been idle for a heartbeat interval."""


_END: Final = _End()
_WAKE: Final = _Wake()
_TICK: Final = _Tick()
_Item = AgentEvent | _Signal


def _is_terminal(item: _Item) -> bool:
    return isinstance(item, CompleteEvent | ErrorEvent)


def upstream_error_event(exc: BaseException) -> ErrorEvent:
    """The terminal event that stands for an upstream call that failed with `exc`."""
    if isinstance(exc, AgentAPIError):
        return ErrorEvent(code=exc.code, message=exc.message, retryable=exc.retryable)
    if isinstance(exc, aiohttp.ClientError | TimeoutError | OSError):
        return ErrorEvent(
            code=ErrorCode.UPSTREAM_UNAVAILABLE,
            message="The assistant is unavailable right now. Please try again.",
            retryable=True,
        )
    return ErrorEvent(code=ErrorCode.INTERNAL, message="Something went wrong on our side.")


class Relay:
    """One run in flight; `run()` relays it, `interrupt()` (from any task) ends it early.

    Deadlines and heartbeats come from one timer per relay that fires a few times per interval
    (not one per event): it cancels a write stuck past the write deadline, queues a heartbeat
    when the connection has been idle, and marks the lease for renewal.
    """

    def __init__(
        self,
        source: AsyncIterator[AgentEvent],
        sink: Sink,
        config: RelayConfig,
        *,
        on_heartbeat: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._source = source
        self._sink = sink
        self._config = config
        self._on_heartbeat = on_heartbeat
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(config.buffer_events)
        self._pump: asyncio.Task[None] | None = None
        self._interrupt: tuple[Ending, ErrorEvent] | None = None
        self._tick_s = min(config.heartbeat_s, config.write_timeout_s) / 4
        self._timer: asyncio.TimerHandle | None = None
        self._writer: asyncio.Task[object] | None = None
        self._last_write = 0.0
        self._last_renew = 0.0
        self._writing_since: float | None = None
        self._expired = False
        self._tick_queued = False
        self._renew_due = False
        self.result = RelayResult("error")
        """The run so far; final once `run()` returns (read it if `run()` was cancelled)."""

    def interrupt(self, ending: Ending, event: ErrorEvent) -> None:
        """End the run now: stop reading the agent and send `event` as the last event."""
        if self._interrupt is not None:
            return
        self._interrupt = (ending, event)
        if self._pump is not None:
            self._pump.cancel()
        # Wake the writer if it is waiting for an event; if the queue is full it is busy and
        # checks the flag before its next read.
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(_WAKE)

    async def run(self) -> RelayResult:
        """Relay until a terminal event, an interrupt, or the client is gone or too slow."""
        loop = asyncio.get_running_loop()
        self._writer = asyncio.current_task()
        self._last_write = self._last_renew = loop.time()
        self._pump = asyncio.create_task(self._read_upstream())
        self._timer = loop.call_later(self._tick_s, self._tick)
        result = self.result
        try:
            await self._write_loop(result)
        except asyncio.CancelledError:
            # Our watchdog's cancel means "too slow"; any other cancel (the client left) goes on.
            if not self._expired or self._writer is None or self._writer.uncancel() > 0:
                raise
            result.ending = "slow_client"
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            result.ending = "client_gone"
        finally:
            if self._timer is not None:
                self._timer.cancel()
            await self._stop_pump()
        return result

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        config = self._config
        if self._writing_since is not None and now - self._writing_since >= config.write_timeout_s:
            self._expired = True
            if self._writer is not None:
                self._writer.cancel()
            self._timer = None
            return
        if now - self._last_renew >= config.heartbeat_s:
            self._renew_due = True
        idle = self._writing_since is None and now - self._last_write >= config.heartbeat_s
        if (idle or self._renew_due) and not self._tick_queued:
            try:
                self._queue.put_nowait(_TICK)
                self._tick_queued = True
            except asyncio.QueueFull:
                pass  # events are waiting: not idle, and the writer renews after its next write
        self._timer = loop.call_later(self._tick_s, self._tick)

    async def _write(self, events: Sequence[AgentEvent]) -> None:
        loop = asyncio.get_running_loop()
        self._writing_since = loop.time()
        try:
            await self._sink.send(events)
        finally:
            self._writing_since = None
        self._last_write = loop.time()

    async def _on_tick(self) -> None:
        self._tick_queued = False
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_write >= self._config.heartbeat_s:
            self._writing_since = loop.time()
            try:
                await self._sink.heartbeat()
            finally:
                self._writing_since = None
            self._last_write = loop.time()
        if self._renew_due:
            await self._renew()

    async def _write_loop(self, result: RelayResult) -> None:
        queue = self._queue
        max_batch = self._config.max_batch
        pending: _Item | None = None
        while True:
            if self._interrupt is not None:
                result.ending, terminal = self._interrupt
                result.terminal = terminal
                await self._stop_pump()
                await self._write([terminal])
                return
            item = pending if pending is not None else await queue.get()
            pending = None
            if isinstance(item, _Tick):
                await self._on_tick()
                continue
            if isinstance(item, _Wake):
                continue
            if isinstance(item, _End):
                # The agent went away without saying how the run ended: never look complete.
                result.terminal = ErrorEvent(
                    code=ErrorCode.UPSTREAM_PROTOCOL_ERROR,
                    message="The answer was cut off. Please try again.",
                    retryable=True,
                )
                result.ending = "error"
                await self._write([result.terminal])
                return
            assert not isinstance(item, _Signal)
            # Whatever else is already waiting goes out in the same write.
            batch: list[AgentEvent] = [item]
            while queue.qsize() and len(batch) < max_batch and not _is_terminal(item):
                item = queue.get_nowait()
                if isinstance(item, _Signal):
                    pending = item
                    break
                batch.append(item)
            for event in batch:
                if type(event) is TokenEvent:
                    result.tokens += 1
                    if result.first_token_at is None and event.channel == "final":
                        result.first_token_at = time.monotonic()
            await self._write(batch)
            if self._renew_due:
                await self._renew()
            last = batch[-1]
            if isinstance(last, CompleteEvent | ErrorEvent):
                result.terminal = last
                result.ending = "complete" if isinstance(last, CompleteEvent) else "error"
                return

    async def _renew(self) -> None:
        self._renew_due = False
        self._last_renew = asyncio.get_running_loop().time()
        if self._on_heartbeat is None:
            return
        try:
            await self._on_heartbeat()
        except Exception:  # a failed renewal must not end a healthy stream; the lease TTL covers it
            log.warning("lease_renew_failed", exc_info=True)

    async def _read_upstream(self) -> None:
        queue = self._queue
        source = self._source
        try:
            async for event in source:
                await queue.put(event)
                if isinstance(event, CompleteEvent | ErrorEvent):
                    break
            else:
                await queue.put(_END)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not isinstance(exc, AgentAPIError | aiohttp.ClientError | TimeoutError | OSError):
                log.exception("upstream_read_failed")
            await queue.put(upstream_error_event(exc))

    async def _stop_pump(self) -> None:
        pump = self._pump
        if pump is None or pump.done():
            return
        pump.cancel()
        try:
            await pump
        except asyncio.CancelledError:
            # The pump's own cancellation; re-raise only if we were cancelled ourselves.
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
        except Exception:
            log.warning("upstream_close_failed", exc_info=True)
