"""The relay on its own: batching, heartbeats, lease renewal, write deadline, interrupts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from support.gateway_harness import stats

from contracts.agent_api import AgentEvent, CompleteEvent, ErrorEvent, TokenEvent
from gateway.relay import Relay, RelayConfig


class RecordingSink:
    def __init__(self, *, stall_after: int | None = None) -> None:
        self.wrote = asyncio.Event()
        self.writes: list[list[AgentEvent]] = []
        self.heartbeats = 0
        self.stall_after = stall_after

    async def send(self, events: Sequence[AgentEvent]) -> None:
        if self.stall_after is not None and len(self.writes) >= self.stall_after:
            await asyncio.Event().wait()  # a client that stopped reading
        self.writes.append(list(events))
        self.wrote.set()

    async def heartbeat(self) -> None:
        self.heartbeats += 1


async def paced(events: Sequence[AgentEvent], gap_s: float) -> AsyncIterator[AgentEvent]:
    for event in events:
        await asyncio.sleep(gap_s)
        yield event


def config(**overrides: float) -> RelayConfig:
    values = {"heartbeat_s": 0.05, "write_timeout_s": 0.2, "buffer_events": 8}
    values.update(overrides)
    return RelayConfig(**values)  # type: ignore[arg-type]


async def test_a_busy_stream_renews_its_lease_without_heartbeats() -> None:
    renewals = 0

    async def renew() -> None:
        nonlocal renewals
        renewals += 1

    tokens = [TokenEvent(channel="final", content="x") for _ in range(40)]
    sink = RecordingSink()
    relay = Relay(
        paced([*tokens, CompleteEvent(stats=stats())], 0.01), sink, config(), on_heartbeat=renew
    )
    result = await relay.run()
    assert result.ending == "complete"
    assert result.tokens == 40
    assert renewals >= 3  # at least 0.4 s of streaming with a 0.05 s interval, never idle that long


async def test_waiting_events_go_out_in_one_write() -> None:
    async def burst() -> AsyncIterator[AgentEvent]:
        for _ in range(5):
            yield TokenEvent(channel="final", content="x")
        yield CompleteEvent(stats=stats())

    sink = RecordingSink()
    result = await Relay(burst(), sink, config()).run()
    assert result.ending == "complete"
    assert sum(len(w) for w in sink.writes) == 6
    assert len(sink.writes) < 6


async def test_idle_streams_heartbeat() -> None:
    sink = RecordingSink()
    relay = Relay(paced([CompleteEvent(stats=stats())], 0.3), sink, config())
    result = await relay.run()
    assert result.ending == "complete"
    assert sink.heartbeats >= 2


async def test_a_stuck_write_ends_as_slow_client_and_stops_reading_the_upstream() -> None:
    read = 0

    async def endless() -> AsyncIterator[AgentEvent]:
        nonlocal read
        while True:
            read += 1
            yield TokenEvent(channel="final", content="x")

    relay = Relay(endless(), RecordingSink(stall_after=3), config())
    result = await relay.run()
    assert result.ending == "slow_client"
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
    # The pump is gone: nothing reads the agent any more (closing it is `relay_run`'s).
    read_at_end = read
    for _ in range(20):
        await asyncio.sleep(0)
    assert read == read_at_end


async def test_an_interrupt_sends_its_event_last() -> None:
    async def hang() -> AsyncIterator[AgentEvent]:
        yield TokenEvent(channel="final", content="x")
        await asyncio.Event().wait()

    sink = RecordingSink()
    relay = Relay(hang(), sink, config(heartbeat_s=5))
    running = asyncio.create_task(relay.run())
    await sink.wrote.wait()
    stop = ErrorEvent(code="CANCELLED", message="Stopped.")
    relay.interrupt("stopped", stop)
    result = await running
    assert (result.ending, result.terminal) == ("stopped", stop)
    assert sink.writes[-1] == [stop]


async def test_a_stream_without_a_terminal_event_ends_in_an_error() -> None:
    sink = RecordingSink()
    relay = Relay(paced([TokenEvent(channel="final", content="x")], 0), sink, config())
    result = await relay.run()
    assert result.ending == "error"
    assert isinstance(result.terminal, ErrorEvent)
    assert result.terminal.code == "UPSTREAM_PROTOCOL_ERROR"
