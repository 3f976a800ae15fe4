"""`StallDeadline`: one timer per model stream bounding the silence while it waits for bytes."""

from __future__ import annotations

import asyncio


class StallDeadline:
    """Cancels the reading task once a wait (`waiting_since` set) lasts `limit_s`.

    A read only notes when it started waiting; the one timer re-arms itself for the latest
    wait when it fires early. The reader turns its own cancellation into `TimeoutError`
    (`fired()` and `uncancel()`), so a stall maps to MODEL_TIMEOUT like httpx's read timeout.
    """

    __slots__ = ("_fired", "_handle", "_loop", "_task", "limit_s", "waiting_since")

    def __init__(self, limit_s: float) -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        self.limit_s = limit_s
        self._loop = loop
        self._task = task
        self._fired = False
        self.waiting_since: float | None = loop.time()
        self._handle = loop.call_at(self.waiting_since + limit_s, self._check)

    def _check(self) -> None:
        now = self._loop.time()
        since = self.waiting_since
        if since is not None and now - since >= self.limit_s:
            self._fired = True
            self._task.cancel()
            return
        self._handle = self._loop.call_at(
            (now if since is None else since) + self.limit_s, self._check
        )

    def fired(self) -> bool:
        """Whether this deadline cancelled the task."""
        return self._fired

    def uncancel(self) -> int:
        """Take back this deadline's cancellation; the cancellations still pending."""
        return self._task.uncancel()

    def cancel(self) -> None:
        """Stop watching (the stream ended)."""
        self._handle.cancel()
