"""Busy conversations across replicas: a lease row per conversation with a reply in progress.

`acquire` inserts the row, or takes it over once its lease has expired: a replica that died
mid-run, even by kill -9, stops renewing, so its conversations free themselves within `lease_s`
(5 s by default: a short lease renewed often, one UPDATE per replica per renewal). A background
task renews this process's leases every `lease_s / 5`; `release` deletes only its own row.

Both are shielded from cancellation: a caller cancelled after the row was written would
otherwise leave a lease nobody releases (the conversation busy for `lease_s`).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Coroutine
from typing import Any, Final, TypeVar

import psycopg
import structlog
from psycopg_pool import AsyncConnectionPool

from agent_service.errors import ConversationBusy
from agent_service.storage.postgres.conversations import borrow

log = structlog.get_logger("agent_service.storage.postgres.active_runs")
T = TypeVar("T")
RETRY_S: Final = 0.05
"""How often a message waiting for a conversation's lease asks again."""

_ACQUIRE: Final = """
INSERT INTO active_runs (key, holder, expires_at)
VALUES (%(key)s, %(holder)s, now() + make_interval(secs => %(lease)s))
ON CONFLICT (key) DO UPDATE
SET holder = excluded.holder, expires_at = excluded.expires_at
WHERE active_runs.expires_at < now()
RETURNING holder
"""
_RENEW: Final = """
UPDATE active_runs SET expires_at = now() + make_interval(secs => %(lease)s)
WHERE holder = ANY(%(holders)s)
"""


class PostgresActiveRuns:
    """Conversations with a run in progress on any replica (a second message gets 409)."""

    def __init__(
        self, pool: AsyncConnectionPool[Any], *, lease_s: float, wait_s: float = 0.0
    ) -> None:
        if not lease_s > 0:
            raise ValueError("lease_s must be positive")
        self._pool = pool
        self._lease_s = lease_s
        self._wait_s = wait_s
        self._held: dict[str, str] = {}
        """key -> holder token of the rows this process owns."""
        self._renewer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start renewing leases; call once the pool is open."""
        if self._renewer is None:
            self._renewer = asyncio.create_task(self._renew_forever(), name="active-runs-renew")

    async def aclose(self) -> None:
        """Stop renewing and give back every lease this process still holds."""
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        for key in list(self._held):
            with contextlib.suppress(psycopg.Error):
                await self.release(key)

    async def acquire(self, key: str) -> None:
        """Take the lease, polling every `RETRY_S` for up to `wait_s` while another run ends."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_s
        while not await _shielded(self._try_acquire(key)):
            if loop.time() >= deadline:
                raise ConversationBusy("a reply is still being written in this conversation")
            await asyncio.sleep(min(RETRY_S, max(0.0, deadline - loop.time())))

    async def _try_acquire(self, key: str) -> bool:
        holder = uuid.uuid4().hex
        async with borrow(self._pool) as conn:
            cursor = await conn.execute(
                _ACQUIRE, {"key": key, "holder": holder, "lease": self._lease_s}
            )
            taken = await cursor.fetchone()
        if taken is not None:
            self._held[key] = holder
        return taken is not None

    async def release(self, key: str) -> None:
        holder = self._held.pop(key, None)
        if holder is None:
            return
        await _shielded(self._delete(key, holder))

    async def _delete(self, key: str, holder: str) -> None:
        async with borrow(self._pool) as conn:
            await conn.execute(
                "DELETE FROM active_runs WHERE key = %s AND holder = %s", (key, holder)
            )

    def __len__(self) -> int:
        return len(self._held)

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self._lease_s / 5)
            if not self._held:
                continue
            try:
                async with borrow(self._pool) as conn:
                    await conn.execute(
                        _RENEW, {"lease": self._lease_s, "holders": list(self._held.values())}
                    )
            except Exception:
                # the next round retries; a lease that lapses meanwhile only un-busies a run
                log.warning("active_runs_renew_failed", held=len(self._held), exc_info=True)


async def _shielded(work: Coroutine[Any, Any, T]) -> T:
    """`work` runs to its end even if the caller is cancelled (a lease is never half-taken)."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(_log_failure)
        raise


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("active_runs_write_failed_after_cancel", error=repr(task.exception()))
