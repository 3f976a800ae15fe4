"""Versioned PostgreSQL migrations: `migrate(dsn)` applies `migrations/NNNN_*.sql` in order,
once each, recorded in `schema_migrations`, under an advisory lock so replicas may start together.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import psycopg
import structlog
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg.rows import dict_row

log = structlog.get_logger("agent_service.storage.postgres.migrate")

MIGRATIONS_DIR: Final = Path(__file__).parent / "migrations"
LOCK_KEY: Final = 0x6167656E74_01
"""pg_advisory_lock key of the schema ("agent" + 1): one migrator at a time per database."""
_LOCK_POLL_S: Final = 0.1
_NAME_RE: Final = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

_LEDGER: Final = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(Exception):
    """The migrations cannot be applied as they are (a changed or misnamed file)."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files of `directory`, by version; refuses gaps, duplicates and odd names."""
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME_RE.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_lower_case.sql")
        found.append(Migration(int(match.group(1)), path.stem, path.read_text(encoding="utf-8")))
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise MigrationError(f"{migration.name}: expected version {expected:04d} (no gaps)")
    return found


@asynccontextmanager
async def advisory_lock(dsn: str, *, key: int = LOCK_KEY) -> AsyncIterator[psycopg.AsyncConnection]:
    """A connection holding the session-level advisory lock `key` (waits for other holders)."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        # Poll rather than block in pg_advisory_lock(): a session blocked there holds a snapshot,
        # and the checkpointer's CREATE INDEX CONCURRENTLY (run by the holder) waits for every
        # such snapshot to end, which would deadlock the holder against its waiters.
        while True:
            cursor = await conn.execute("SELECT pg_try_advisory_lock(%s)", (key,))
            row = await cursor.fetchone()
            if row is not None and row[0]:
                break
            await asyncio.sleep(_LOCK_POLL_S)
        try:
            yield conn
        finally:
            # Closing the session would release it too; unlocking keeps a pooled reuse clean.
            await conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


async def migrate(
    dsn: str,
    *,
    directory: Path = MIGRATIONS_DIR,
    then: Callable[[psycopg.AsyncConnection], Awaitable[None]] | None = None,
) -> list[str]:
    """Apply the pending migrations (each in its own transaction); return the names applied.

    `then` runs on the same connection while the lock is still held (e.g. seeding if empty).
    """
    migrations = load_migrations(directory)
    applied_now: list[str] = []
    async with advisory_lock(dsn) as conn:
        await conn.execute(_LEDGER)
        cursor = await conn.execute("SELECT version, name, checksum FROM schema_migrations")
        applied = {int(v): (str(n), str(c)) for v, n, c in await cursor.fetchall()}
        for migration in migrations:
            done = applied.get(migration.version)
            if done is not None:
                if done[1] != migration.checksum:
                    raise MigrationError(
                        f"{migration.name} changed after it was applied as {done[0]}; "
                        "add a new migration instead of editing an applied one"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql.encode())
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
            applied_now.append(migration.name)
            log.info("migration_applied", migration=migration.name)
        await _setup_checkpointer(dsn)
        if then is not None:
            await then(conn)
    return applied_now


async def _setup_checkpointer(dsn: str) -> None:
    # LangGraph's checkpoint tables have their own migration ledger; running it under our lock
    # keeps two replicas from racing through it.
    async with await psycopg.AsyncConnection.connect(
        dsn, autocommit=True, prepare_threshold=0, row_factory=dict_row
    ) as conn:
        await AsyncPostgresSaver(conn).setup()
