"""The run's events grouped into writes: a burst is one write, a paced run one per event, and a
stream closed or cancelled mid-wait still lets the run unwind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from contracts.batches import in_batches


async def bursts(unwound: list[str], gate: asyncio.Event | None) -> AsyncIterator[int]:
    """0-2 at once, a wait, 3, a wait, 4-6 at once (a wait is one loop turn, or `gate`)."""
    try:
        for i in range(3):
            yield i
        await (gate.wait() if gate else asyncio.sleep(0))
        yield 3
        await (gate.wait() if gate else asyncio.sleep(0))
        for i in range(4, 7):
            yield i
    finally:
        await asyncio.sleep(0)  # cleanup that itself waits, as LangGraph's does
        unwound.append("done")


async def test_what_is_ready_at_once_is_one_batch_and_order_is_kept() -> None:
    unwound: list[str] = []
    got = [batch async for batch in in_batches(bursts(unwound, None))]
    assert got == [[0, 1, 2], [3], [4, 5, 6]]
    assert unwound == ["done"]


async def test_cancelling_the_reader_mid_wait_unwinds_the_source() -> None:
    unwound: list[str] = []
    got: list[list[int]] = []
    first = asyncio.Event()

    async def read() -> None:
        async for batch in in_batches(bursts(unwound, asyncio.Event())):
            got.append(batch)
            first.set()

    task = asyncio.create_task(read())
    await first.wait()  # the reader is now waiting inside the source
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert got == [[0, 1, 2]]
    assert unwound == ["done"]


async def test_closing_between_batches_unwinds_the_source() -> None:
    unwound: list[str] = []
    batches = in_batches(bursts(unwound, asyncio.Event()))
    assert await anext(batches) == [0, 1, 2]  # the next step is now waiting on the gate
    await batches.aclose()
    assert unwound == ["done"]


async def test_a_source_that_never_waits_still_hands_over_its_items() -> None:
    async def endless() -> AsyncIterator[int]:
        i = 0
        while True:
            yield i
            i += 1

    batches = in_batches(endless(), limit=4)
    assert [await anext(batches) for _ in range(2)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    await batches.aclose()
