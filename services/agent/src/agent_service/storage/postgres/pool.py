"""Connection pools that know when PostgreSQL is down: fail fast while it is, recover at once.

psycopg_pool alone waits the full `timeout` (5 s) for a connection on every request during an
outage, and retries its own reconnections with an exponential backoff that, after a 45 s outage,
left replicas 19–29 s behind the database's return. Here:

- every pool of the replica shares one `DatabaseHealth`: a failed connect or a failed check of a
  pooled connection marks the database down, a successful connect marks it up;
- while it is down a request waits at most `down_wait_s` for a connection, then gets
  `UPSTREAM_UNAVAILABLE` (retryable), instead of the full pool timeout;
- the pool gives up a reconnection cycle after `reconnect_timeout` (`AGENT_PG_RECONNECT_S`), so
  the next request's connect is tried at once instead of after a backoff grown during the outage.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
import structlog
from psycopg_pool import AsyncConnectionPool, PoolTimeout

log = structlog.get_logger("agent_service.storage.postgres.pool")


class DatabaseHealth:
    """Whether the replica last found PostgreSQL reachable (shared by its pools)."""

    def __init__(self, *, down_wait_s: float) -> None:
        self.down_wait_s = down_wait_s
        self.down_since: float | None = None

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def mark_down(self, reason: object) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            log.warning("postgres_down", reason=str(reason)[:200])

    def mark_up(self) -> None:
        if self.down_since is not None:
            log.info("postgres_up", down_s=round(time.monotonic() - self.down_since, 2))
            self.down_since = None


def _watched_connection(health: DatabaseHealth) -> type[psycopg.AsyncConnection[Any]]:
    class WatchedConnection(psycopg.AsyncConnection[Any]):
        """A connection whose opening reports to `health`."""

        @classmethod
        async def connect(cls, *args: Any, **kwargs: Any) -> Any:
            try:
                conn = await super().connect(*args, **kwargs)
            except psycopg.OperationalError as exc:
                health.mark_down(exc)
                raise
            health.mark_up()
            return conn

    return WatchedConnection


class WatchedPool(AsyncConnectionPool[Any]):
    """An `AsyncConnectionPool` that fails fast while `health` says the database is down."""

    def __init__(
        self, conninfo: str, *, health: DatabaseHealth, reconnect_timeout: float, **kwargs: Any
    ) -> None:
        self.health = health

        async def check(conn: psycopg.AsyncConnection[Any]) -> None:
            try:
                await AsyncConnectionPool.check_connection(conn)
            except psycopg.OperationalError as exc:
                health.mark_down(exc)
                raise

        super().__init__(
            conninfo,
            connection_class=_watched_connection(health),
            check=check,
            reconnect_timeout=reconnect_timeout,
            open=False,
            **kwargs,
        )

    async def getconn(self, timeout: float | None = None) -> Any:  # noqa: ASYNC109 (the pool's API)
        """A connection within `timeout`; within `down_wait_s` once the database is known down."""
        total = self.timeout if timeout is None else timeout
        first = min(total, self.health.down_wait_s)
        try:
            return await super().getconn(first)
        except PoolTimeout:
            # a short first wait: if the database went down meanwhile (a connect or a check
            # failed), say so now; else the pool is only busy, so wait out the rest
            if self.health.down or total <= first:
                raise
        return await super().getconn(total - first)
