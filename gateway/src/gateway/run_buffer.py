"""A run's agent events, kept so a client that lost its connection can resume where it was.

Events are kept as the agent sent them (semantic events, not a transport's rendering): a resume
maps them again with the transport's pure mapping, so SSE, the AI SDK and WebSocket all resume
from one buffer. The in-process store below is the default; `gateway.redis_runs` shares runs
between replicas.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator
from dataclasses import asdict, dataclass
from typing import Final, Literal, Protocol

from contracts.agent_api import AgentEvent, CompleteEvent, ErrorEvent
from gateway.auth import Principal

TRANSPORTS: Final = ("sse", "ai_sdk", "ws")


@dataclass(frozen=True, slots=True)
class RunMeta:
    """Who a buffered run belongs to and what its stream opened with."""

    run_id: str
    """The assistant message id the stream's first event carries (`message_id`, `messageId`)."""
    company_id: str
    user_id: str
    conversation_id: str
    transport: str
    request_id: str

    def owned_by(self, principal: Principal) -> bool:
        """Whether `principal` may resume this run (the same user of the same company)."""
        return (self.company_id, self.user_id) == (principal.company_id, principal.user_id)

    def as_dict(self) -> dict[str, str]:
        """The fields, for storage."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ResumeConfig:
    """Limits of the run buffer (docs/configuration.md, `GATEWAY_RESUME_*`)."""

    retention_s: float = 600.0
    max_runs: int = 1000
    max_events: int = 20_000
    flush_s: float = 0.1


@dataclass(slots=True)
class Producer:
    """The task reading one run of this replica's into its buffer, and why it was ended early."""

    task: asyncio.Task[None] | None = None
    ended_by: Literal["stop", "shutdown"] | None = None
    """`stop`: the user stopped the run (charged its reservation); `shutdown`: this replica."""
    started: bool = False
    """Whether the task has begun: one cancelled before its first step would never run its
    `finally` (the agent's stream left open, the slot held), so it is ended from inside instead."""

    def end(self, why: Literal["stop", "shutdown"]) -> None:
        """Cancel the run (the first reason given is kept)."""
        if self.ended_by is None:
            self.ended_by = why
        if self.task is not None and self.started:
            self.task.cancel()


def is_terminal(event: AgentEvent) -> bool:
    """Whether `event` ends a run."""
    return isinstance(event, CompleteEvent | ErrorEvent)


class RunBuffer:
    """One run's events in order; any number of followers read them from any position."""

    __slots__ = ("_waiter", "ended_at", "events", "meta", "overflowed")

    def __init__(self, meta: RunMeta) -> None:
        self.meta = meta
        self.events: list[AgentEvent] = []
        self.ended_at: float | None = None
        self.overflowed = False
        self._waiter: asyncio.Future[None] | None = None

    @property
    def ended(self) -> bool:
        """Whether the run's last event is in."""
        return self.ended_at is not None

    def append(self, event: AgentEvent) -> None:
        """Add an event and wake the followers (no await: the per-token path)."""
        self.events.append(event)
        if is_terminal(event):
            self.ended_at = time.monotonic()
        self._wake()

    def end(self) -> None:
        """The run is over (whether or not a terminal event came)."""
        if self.ended_at is None:
            self.ended_at = time.monotonic()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def follow(self, start: int = 0) -> AsyncGenerator[AgentEvent, None]:
        """The events from index `start` on, waiting for new ones until the run ends."""
        index = start
        events = self.events
        while True:
            while index < len(events):
                event = events[index]
                index += 1
                yield event
            if self.ended_at is not None:
                return
            if self._waiter is None:
                self._waiter = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._waiter)


class RunStore(Protocol):
    """Where runs are buffered: this process only, or Redis for every replica."""

    def begin(self, meta: RunMeta) -> RunBuffer:
        """Buffer a new run (its producer appends to the buffer returned)."""
        ...

    async def find(self, run_id: str) -> RunMeta | None:
        """A buffered run (running or ended within the retention), or None."""
        ...

    async def active_run(self, principal: Principal, conversation_id: str) -> RunMeta | None:
        """The conversation's run still in progress, or None."""
        ...

    def follow(self, meta: RunMeta, start: int = 0) -> AsyncGenerator[AgentEvent, None]:
        """A run's events from index `start`, live until it ends."""
        ...

    def flushed(self, buffer: RunBuffer) -> None:
        """Events were appended to `buffer`: share them (batched) where replicas can read them."""
        ...

    async def request_stop(self, meta: RunMeta) -> bool:
        """Ask the producer of a run of another process to stop it; whether it was asked."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class MemoryRunStore:
    """Runs of this process, bounded in count and kept `retention_s` after they end."""

    def __init__(self, config: ResumeConfig) -> None:
        self.config = config
        self._runs: OrderedDict[str, RunBuffer] = OrderedDict()

    def local(self, run_id: str) -> RunBuffer | None:
        """A run buffered by this process, if still kept."""
        self._expire()
        return self._runs.get(run_id)

    def begin(self, meta: RunMeta) -> RunBuffer:
        """Buffer a new run, dropping expired runs, then the oldest past `max_runs`."""
        self._expire()
        while len(self._runs) >= self.config.max_runs:
            # The oldest run stops being resumable; its live follower keeps its reference.
            self._runs.popitem(last=False)
        buffer = self._runs[meta.run_id] = RunBuffer(meta)
        return buffer

    def _expire(self) -> None:
        cutoff = time.monotonic() - self.config.retention_s
        for run_id in [r for r, b in self._runs.items() if b.ended_at and b.ended_at < cutoff]:
            del self._runs[run_id]

    async def find(self, run_id: str) -> RunMeta | None:
        """A run of this process."""
        buffer = self.local(run_id)
        return buffer.meta if buffer is not None else None

    async def active_run(self, principal: Principal, conversation_id: str) -> RunMeta | None:
        """The newest running run of the conversation in this process."""
        for buffer in reversed(self._runs.values()):
            meta = buffer.meta
            if meta.conversation_id == conversation_id and meta.owned_by(principal):
                return None if buffer.ended else meta
        return None

    def follow(self, meta: RunMeta, start: int = 0) -> AsyncGenerator[AgentEvent, None]:
        """Follow a run of this process."""
        buffer = self._runs[meta.run_id]
        return buffer.follow(start)

    def flushed(self, buffer: RunBuffer) -> None:
        """Nothing to share: followers read the buffer itself."""

    async def request_stop(self, meta: RunMeta) -> bool:  # noqa: ARG002 (the protocol's)
        """No other process to ask: this process's runs are stopped by `gateway.resume`."""
        return False

    async def close(self) -> None:
        """Nothing to release."""
