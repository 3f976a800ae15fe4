"""`in_batches`: an async iterator's items grouped by what was ready without waiting.

A stream's events come in bursts (a model read of many chunks becomes many tokens at once, one
read from the agent holds several events) or one at a time (a paced model). Writing each burst as
one write, in the task that reads the source (no pump task and queue between them: the agent's
response runs the graph, the gateway's relay reads the agent), needs to know whether the next
item is ready before waiting for it. `in_batches` steps the source's `__anext__` once by hand: if it
finishes, the item joins the batch; if it would wait, the batch goes out first and the step is
resumed by awaiting `_Rest`, which hands the source's own future to the task, so cancellation
and wake-ups reach the source exactly as if it had been awaited directly.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Coroutine, Generator
from typing import Any, TypeVar, cast

T = TypeVar("T")


class _Rest(Awaitable[T]):
    """The rest of an awaitable that was stepped once and paused on `signal`."""

    __slots__ = ("_signal", "_step")

    def __init__(self, step: Coroutine[Any, Any, T], signal: object) -> None:
        self._step = step
        self._signal = signal

    def __await__(self) -> Generator[Any, Any, T]:
        step, signal = self._step, self._signal
        while True:
            try:
                value = yield signal
            except BaseException as exc:  # a cancellation (or anything thrown in) goes on in
                try:
                    signal = step.throw(exc)
                except StopIteration as done:
                    return cast(T, done.value)
            else:
                try:
                    signal = step.send(value)
                except StopIteration as done:
                    return cast(T, done.value)


async def in_batches(source: AsyncIterator[T], limit: int = 256) -> AsyncGenerator[list[T], None]:
    """`source`'s items in order, each list holding what was ready without waiting (at most
    `limit`: a source that never waits still hands over its items).

    Closing this iterator while a step of `source` is paused cancels that step and waits for
    the source to unwind (its cleanup runs, as it would for a cancelled consumer)."""
    batch: list[T] = []
    pending: Coroutine[Any, Any, T] | None = None
    try:
        while True:
            step = cast(Coroutine[Any, Any, T], source.__anext__())
            try:
                signal = step.send(None)
            except StopIteration as done:
                batch.append(cast(T, done.value))
                if len(batch) >= limit:
                    yield batch
                    batch = []
                continue
            except StopAsyncIteration:
                break
            if batch:
                pending = step  # paused while the consumer handles the batch
                yield batch
                pending = None
                batch = []
            batch.append(await _Rest(step, signal))
    except StopAsyncIteration:
        pass  # the source ended while it was awaited
    finally:
        if pending is not None:
            # closed while a step was paused: cancel it and let the source unwind
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, StopIteration):
                await _Rest(pending, pending.throw(asyncio.CancelledError()))
    if batch:
        yield batch
