"""`InlineSteps`: the graph's coroutine run by hand in the reading task, which wakes whenever a node
writes output, not only when the graph moves on.

Before, the nodes streamed through LangGraph's custom stream writer: each item was put on a queue
through `call_soon_threadsafe` (a write to the loop's wake-up descriptor), read by a waiter task
created per item and passed on by an `asyncio.wait` over the node's task and that waiter — three
task wake-ups, a system call and a task per paced token. Now a node appends to the run's list
(`RunContext.out`) and sets the reader's one pending future: one wake-up of the reading task, no
system call, no task.

LangGraph runs each node in a task of its own (so the node sees its config in its context); the
graph's coroutine, stepped here, waits on that task. It is stepped the way `asyncio.Task` steps a
coroutine: when it yields a future, the future is held here and the reading task waits on a
fresh `wake` future instead, set by the held future's completion or by a node's write. A
cancellation of the reading task is passed to the held future, as `Task.cancel` does, so the node
task is cancelled where it waits and the graph unwinds exactly as if it had been awaited.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any, Final, Generic, TypeVar

T = TypeVar("T")

_NOTHING: Final = object()


class InlineSteps(Generic[T]):
    """`await steps` runs `coro` until its output list `out` holds items (→ False: take them,
    then await again) or it ends (→ True; its value in `result`). Writers append to `out` and
    call `notify()`. The coroutine's exceptions propagate from the `await` that met them."""

    __slots__ = ("_bare", "_coro", "_held", "_out", "_throw", "_wake", "done", "result")

    def __init__(self, coro: Coroutine[Any, Any, T], out: list[Any]) -> None:
        self._coro = coro
        self._out = out
        self._held: asyncio.Future[Any] | None = None
        """The future the coroutine waits on."""
        self._bare: object = _NOTHING
        """A bare `yield` (`sleep(0)`) the coroutine paused on with output ready: passed on first
        at the next await."""
        self._throw: BaseException | None = None
        """What to throw into the coroutine when it next runs (a cancellation)."""
        self._wake: asyncio.Future[None] | None = None
        """What the reading task waits on while the coroutine waits on `_held`."""
        self.done = False
        self.result: T | None = None

    def notify(self) -> None:
        """A writer added output: wake the reading task if it waits (call from the loop)."""
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    def _held_done(self, _: asyncio.Future[Any]) -> None:
        self.notify()

    def __await__(self) -> Generator[Any, Any, bool]:
        coro, out = self._coro, self._out
        value: Any = None
        if self._bare is not _NOTHING:
            bare, self._bare = self._bare, _NOTHING
            try:
                value = yield bare
            except BaseException as exc:
                self._throw = exc
        while True:
            held = self._held
            if held is None:
                # runnable: step it until it waits
                try:
                    if self._throw is not None:
                        error, self._throw = self._throw, None
                        signal = coro.throw(error)
                    else:
                        signal = coro.send(value)
                except StopIteration as stop:
                    self.done = True
                    self.result = stop.value
                    return True
                except BaseException:
                    self.done = True
                    raise
                value = None
                if getattr(signal, "_asyncio_future_blocking", None):
                    # `await future` inside the coroutine: hold it, as a task would
                    held = self._held = signal
                    held._asyncio_future_blocking = False
                    held.add_done_callback(self._held_done)
                else:
                    # a bare `yield` (sleep(0)): pass it on untouched
                    if out:
                        self._bare = signal
                        return False
                    try:
                        value = yield signal
                    except BaseException as exc:
                        self._throw = exc
                    continue
            if held.done():
                self._held = None  # it resumes: its `await future` reads the result
                continue
            if out:
                return False
            wake = self._wake = asyncio.get_running_loop().create_future()
            try:
                yield from wake
            except asyncio.CancelledError as exc:
                # as Task.cancel: cancel what the coroutine waits on, which it sees on resuming
                if not held.cancel():
                    self._throw = exc
            finally:
                self._wake = None

    async def cancel(self) -> None:
        """Stop the coroutine where it waits and let it unwind (what it writes while it unwinds
        is dropped). A no-op once it ended."""
        if self.done:
            return
        if self._held is None and self._bare is _NOTHING:
            # never started (or between steps of a reader that never awaited it again)
            self.done = True
            self._coro.close()
            return
        if self._held is None or not self._held.cancel():
            self._throw = asyncio.CancelledError()
        self._out.clear()
        try:
            while not await self:
                self._out.clear()
        except asyncio.CancelledError:
            pass
        finally:
            self._out.clear()
