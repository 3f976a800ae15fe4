"""Relaying one run from the agent to one client: buffering, heartbeats, write deadlines, endings.

A pump task reads the agent's events into a bounded queue (so a slow client slows the agent down,
and memory stays bounded); the caller's task is the only writer. Idle gaps become heartbeats,
every write has a deadline, and whatever happens the run ends with exactly one terminal event on
the client side or the client is gone. Cancelling the caller (client disconnect with
`handler_cancellation`) cancels the pump, which closes the upstream response.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
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

    async def send(self, event: AgentEvent) -> None:
        """Map and write one event (raises on a dead or stuck client)."""

    async def heartbeat(self) -> None:
        """Write something harmless so idle connections stay open and dead ones are noticed."""


@dataclass(frozen=True, slots=True)
class RelayConfig:
    heartbeat_s: float
    write_timeout_s: float
    buffer_events: int


@dataclass(slots=True)
class RelayResult:
    """How a run ended, for limits, metrics and logs."""

    ending: Ending
    terminal: CompleteEvent | ErrorEvent | None = None
    tokens: int = 0
    first_token_at: float | None = None


class _End:
    pass


class _Wake:
    pass


_END: Final = _End()
_WAKE: Final = _Wake()
_Item = AgentEvent | _End | _Wake


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
    """One run in flight; `run()` relays it, `interrupt()` (from any task) ends it early."""

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
        self._pump = asyncio.create_task(self._read_upstream())
        result = RelayResult("error")
        try:
            await self._write_loop(result)
        except TimeoutError:
            result.ending = "slow_client"
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            result.ending = "client_gone"
        finally:
            await self._stop_pump()
        return result

    async def _write_loop(self, result: RelayResult) -> None:
        queue = self._queue
        sink = self._sink
        write_timeout = self._config.write_timeout_s
        heartbeat_s = self._config.heartbeat_s
        while True:
            if self._interrupt is not None:
                result.ending, result.terminal = self._interrupt
                await self._stop_pump()
                async with asyncio.timeout(write_timeout):
                    await sink.send(result.terminal)
                return
            try:
                async with asyncio.timeout(heartbeat_s):
                    item = await queue.get()
            except TimeoutError:
                async with asyncio.timeout(write_timeout):
                    await sink.heartbeat()
                await self._renew()
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
                async with asyncio.timeout(write_timeout):
                    await sink.send(result.terminal)
                return
            if type(item) is TokenEvent:
                result.tokens += 1
                if result.first_token_at is None and item.channel == "final":
                    result.first_token_at = time.monotonic()
            async with asyncio.timeout(write_timeout):
                await sink.send(item)
            if isinstance(item, CompleteEvent | ErrorEvent):
                result.terminal = item
                result.ending = "complete" if isinstance(item, CompleteEvent) else "error"
                return

    async def _renew(self) -> None:
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
        finally:
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                # Closing the generator closes the upstream response: the agent sees us leave.
                await aclose()

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
