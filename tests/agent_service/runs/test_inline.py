"""`InlineSteps`: output written by another task wakes the reader at once, in order; a cancelled
reader cancels what the coroutine waits on, and closing it unwinds the coroutine."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agent_service.runs.inline import InlineSteps


class Writer:
    def __init__(self) -> None:
        self.out: list[Any] = []
        self.steps: InlineSteps[Any] | None = None

    def emit(self, item: Any) -> None:
        self.out.append(item)
        assert self.steps is not None
        self.steps.notify()


async def _in_a_task(writer: Writer, items: int, pause: float, log: list[str]) -> str:
    """Like LangGraph: the coroutine awaits a task of its own that writes the output."""

    async def node() -> str:
        try:
            for i in range(items):
                writer.emit(i)
                await asyncio.sleep(pause)
        except asyncio.CancelledError:
            log.append("node cancelled")
            raise
        return "node done"

    try:
        return await asyncio.create_task(node())
    finally:
        log.append("graph unwound")


async def _read(steps: InlineSteps[Any], writer: Writer) -> list[list[Any]]:
    batches = []
    while True:
        ended = await steps
        if writer.out:
            batches.append(writer.out[:])
            writer.out.clear()
        if ended:
            return batches


async def test_each_write_wakes_the_reader_before_the_node_finishes() -> None:
    writer, log = Writer(), list[str]()
    steps = writer.steps = InlineSteps(_in_a_task(writer, 5, 0.01, log), writer.out)
    batches = await _read(steps, writer)
    assert batches == [[0], [1], [2], [3], [4]]  # one batch per write: nothing waited for the end
    assert steps.result == "node done"
    assert log == ["graph unwound"]


async def test_writes_made_without_waiting_come_as_one_batch() -> None:
    writer, log = Writer(), list[str]()
    steps = writer.steps = InlineSteps(_in_a_task(writer, 50, 0, log), writer.out)
    batches = await _read(steps, writer)
    assert [x for b in batches for x in b] == list(range(50))


async def test_a_cancelled_reader_cancels_the_node_where_it_waits() -> None:
    writer, log = Writer(), list[str]()
    steps = writer.steps = InlineSteps(_in_a_task(writer, 1000, 0.01, log), writer.out)
    reader = asyncio.create_task(_read(steps, writer))
    await asyncio.sleep(0.05)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert log == ["node cancelled", "graph unwound"]
    assert steps.done


async def test_a_timeout_around_the_reader_still_times_out() -> None:
    writer, log = Writer(), list[str]()
    steps = writer.steps = InlineSteps(_in_a_task(writer, 1000, 0.01, log), writer.out)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await _read(steps, writer)
    assert log == ["node cancelled", "graph unwound"]


async def test_cancel_between_reads_unwinds_the_coroutine() -> None:
    writer, log = Writer(), list[str]()
    steps = writer.steps = InlineSteps(_in_a_task(writer, 1000, 0.01, log), writer.out)
    assert await steps is False  # output is ready; the coroutine is paused on its node
    await steps.cancel()
    assert log == ["node cancelled", "graph unwound"]
    assert steps.done and writer.out == []
    await steps.cancel()  # a no-op once done


async def test_cancel_before_the_first_step_closes_the_coroutine() -> None:
    writer, log = Writer(), list[str]()
    steps = writer.steps = InlineSteps(_in_a_task(writer, 3, 0, log), writer.out)
    await steps.cancel()
    assert steps.done and log == []


async def test_the_coroutine_errors_reach_the_reader() -> None:
    async def failing() -> None:
        await asyncio.sleep(0)
        raise ValueError("boom")

    steps = InlineSteps(failing(), [])
    with pytest.raises(ValueError, match="boom"):
        await steps
    assert steps.done


async def test_a_bare_yield_with_output_ready_hands_the_output_over_first() -> None:
    out: list[int] = []

    async def inline_writer() -> str:
        for i in range(3):
            out.append(i)
            await asyncio.sleep(0)  # a bare yield, in the reader's own task
        return "ok"

    steps = InlineSteps(inline_writer(), out)
    batches = []
    while not await steps:
        batches.append(out[:])
        out.clear()
    assert batches == [[0], [1], [2]] and steps.result == "ok"
