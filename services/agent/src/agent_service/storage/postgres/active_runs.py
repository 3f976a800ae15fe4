"""Busy conversations across replicas: a lease row per conversation with a reply in progress.

`acquire` inserts the row, or takes it over once its lease has expired (a replica that died
mid-run stops renewing, so its conversations free themselves after `lease_s`); a background task
renews this process's leases every `lease_s / 3`; `release` deletes only its own row.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any, Final

import psycopg
import structlog
from psycopg_pool import AsyncConnectionPool

from agent_service.errors import ConversationBusy
from agent_service.storage.postgres.conversations import borrow

log = structlog.get_logger("agent_service.storage.postgres.active_runs")

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

    def __init__(self, pool: AsyncConnectionPool[Any], *, lease_s: float) -> None:
        if not lease_s > 0:
            raise ValueError("lease_s must be positive")
        self._pool = pool
        self._lease_s = lease_s
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
        holder = uuid.uuid4().hex
        async with borrow(self._pool) as conn:
            cursor = await conn.execute(
                _ACQUIRE, {"key": key, "holder": holder, "lease": self._lease_s}
            )
            taken = await cursor.fetchone()
        if taken is None:
            raise ConversationBusy("a reply is still being written in this conversation")
        self._held[key] = holder

    async def release(self, key: str) -> None:
        holder = self._held.pop(key, None)
        if holder is None:
            return
        async with borrow(self._pool) as conn:
            await conn.execute(
                "DELETE FROM active_runs WHERE key = %s AND holder = %s", (key, holder)
            )

    def __len__(self) -> int:
        return len(self._held)

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self._lease_s / 3)
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
