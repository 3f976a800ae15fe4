"""Relaying one run from the agent to one client: buffering, heartbeats, write deadlines, endings.

The caller's task reads the agent's events and writes them, what is ready at once in one write
(a slow client slows the reading of the agent down, and memory stays bounded). Idle gaps become
heartbeats, every write has a deadline, and whatever happens the run ends with exactly one
terminal event on the client side or the client is gone. Cancelling the caller (client
disconnect with `handler_cancellation`) cancels the read; closing the upstream is the caller's
(`gateway.runs.relay_run`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import aiohttp
import structlog

from contracts.agent_api import AgentEvent, CompleteEvent, ErrorEvent, TokenEvent
from contracts.batches import in_batches
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


def _is_terminal(item: AgentEvent) -> bool:
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

    The caller's task reads the agent and writes the client: what is ready at once goes out in
    one write (`contracts.batches.in_batches`), with no pump task or queue between them.
    Deadlines and heartbeats come from one timer per relay that fires a few times per interval
    (not one per event): it cancels a write stuck past the write deadline, and while the relay
    waits for the agent it sends a heartbeat from a short-lived task when the connection has been
    idle, and renews the lease when due (after a write otherwise).
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
        self._interrupt: tuple[Ending, ErrorEvent] | None = None
        self._tick_s = min(config.heartbeat_s, config.write_timeout_s) / 4
        self._timer: asyncio.TimerHandle | None = None
        self._writer: asyncio.Task[object] | None = None
        self._beat: asyncio.Task[None] | None = None
        self._last_write = 0.0
        self._last_renew = 0.0
        self._writing_since: float | None = None
        self._reading = False
        self._expired = False
        self._woken = False
        self._renew_due = False
        self.result = RelayResult("error")
        """The run so far; final once `run()` returns (read it if `run()` was cancelled)."""

    def interrupt(self, ending: Ending, event: ErrorEvent) -> None:
        """End the run now: stop reading the agent and send `event` as the last event."""
        if self._interrupt is not None:
            return
        self._interrupt = (ending, event)
        # Wake the relay if it is waiting for the agent; if it is writing, it checks the flag
        # after the write.
        if self._reading and self._writer is not None and not self._woken:
            self._woken = True
            self._writer.cancel()

    async def run(self) -> RelayResult:
        """Relay until a terminal event, an interrupt, or the client is gone or too slow."""
        loop = asyncio.get_running_loop()
        self._writer = asyncio.current_task()
        self._last_write = self._last_renew = loop.time()
        self._timer = loop.call_later(self._tick_s, self._tick)
        result = self.result
        config = self._config
        batches = in_batches(self._source, min(config.buffer_events, config.max_batch))
        try:
            try:
                await self._write_loop(result, batches)
            except asyncio.CancelledError:
                # Our own cancels: the watchdog's means "too slow", an interrupt's "stop reading";
                # any other cancel (the client left) goes on.
                if self._writer is None or not (self._expired or self._woken):
                    raise
                if self._writer.uncancel() > 0:
                    raise
                if self._expired:
                    result.ending = "slow_client"
                else:
                    await self._end_interrupted(result, batches)
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            result.ending = "client_gone"
        except asyncio.CancelledError:
            if self._expired and self._writer is not None and self._writer.uncancel() == 0:
                result.ending = "slow_client"  # the interrupt's write was stuck too
            else:
                raise
        finally:
            if self._timer is not None:
                self._timer.cancel()
            await self._stop_beat()
            await self._close(batches)
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
        # While writing, the writer renews after its write; while it waits for the agent, a
        # short-lived task does what is due.
        if (
            (idle or self._renew_due)
            and self._reading
            and (self._beat is None or self._beat.done())
        ):
            self._beat = asyncio.create_task(self._on_tick())
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
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_write >= self._config.heartbeat_s:
            self._writing_since = loop.time()
            try:
                await self._sink.heartbeat()
            except (ConnectionError, aiohttp.ClientConnectionResetError):
                return  # the writer finds out at its next write
            finally:
                self._writing_since = None
            self._last_write = loop.time()
        if self._renew_due:
            await self._renew()

    async def _write_loop(
        self, result: RelayResult, batches: AsyncGenerator[list[AgentEvent], None]
    ) -> None:
        while True:
            if self._interrupt is not None:
                await self._end_interrupted(result, batches)
                return
            self._reading = True
            try:
                batch = await anext(batches)
            except StopAsyncIteration:
                # The agent went away without saying how the run ended: never look complete.
                result.terminal = ErrorEvent(
                    code=ErrorCode.UPSTREAM_PROTOCOL_ERROR,
                    message="The answer was cut off. Please try again.",
                    retryable=True,
                )
                result.ending = "error"
                await self._write([result.terminal])
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not isinstance(
                    exc, AgentAPIError | aiohttp.ClientError | TimeoutError | OSError
                ):
                    log.exception("upstream_read_failed")
                batch = [upstream_error_event(exc)]
            finally:
                self._reading = False
            for i, event in enumerate(batch):
                if type(event) is TokenEvent:
                    result.tokens += 1
                    if result.first_token_at is None and event.channel == "final":
                        result.first_token_at = time.monotonic()
                elif _is_terminal(event):
                    del batch[i + 1 :]  # nothing follows a terminal event
                    break
            await self._write(batch)
            if self._renew_due:
                await self._renew()
            last = batch[-1]
            if isinstance(last, CompleteEvent | ErrorEvent):
                result.terminal = last
                result.ending = "complete" if isinstance(last, CompleteEvent) else "error"
                return

    async def _end_interrupted(
        self, result: RelayResult, batches: AsyncGenerator[list[AgentEvent], None]
    ) -> None:
        assert self._interrupt is not None
        result.ending, terminal = self._interrupt
        result.terminal = terminal
        await self._close(batches)
        await self._write([terminal])

    async def _renew(self) -> None:
        self._renew_due = False
        self._last_renew = asyncio.get_running_loop().time()
        if self._on_heartbeat is None:
            return
        try:
            await self._on_heartbeat()
        except Exception:  # a failed renewal must not end a healthy stream; the lease TTL covers it
            log.warning("lease_renew_failed", exc_info=True)

    async def _stop_beat(self) -> None:
        beat, self._beat = self._beat, None
        if beat is not None and not beat.done():
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def _close(self, batches: AsyncGenerator[list[AgentEvent], None]) -> None:
        """Stop reading the agent (a read it was waiting for is cancelled)."""
        try:
            await batches.aclose()
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
        except Exception:
            log.warning("upstream_close_failed", exc_info=True)
