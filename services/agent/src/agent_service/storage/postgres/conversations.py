"""Conversation ownership in PostgreSQL: the same contract as `SqliteConversationStore`, shared by
every replica. Every lookup is by (company, user, id)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

import psycopg
from psycopg_pool import AsyncConnectionPool

from agent_service.errors import STORE_DOWN, STORE_ERRORS, StoreUnavailable
from agent_service.providers.base import TenantContext
from agent_service.storage.sqlite.conversations import MAX_LISTED, TITLE_CHARS
from contracts.agent_api import ConversationSummary

_COLUMNS: Final = "id, title, created_at, updated_at, message_count"


@asynccontextmanager
async def borrow(pool: AsyncConnectionPool[Any]) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A pooled connection; a database that is down or saturated is a 503, never a 500."""
    try:
        async with pool.connection() as conn:
            yield conn
    except STORE_ERRORS:
        raise StoreUnavailable(STORE_DOWN) from None


def _title(message: str) -> str:
    line = " ".join(message.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1] + "…"


def _iso(value: dt.datetime) -> str:
    # the same rendering as the SQLite store: UTC, milliseconds, +00:00
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds")


class PostgresConversationStore:
    """PostgreSQL-backed ownership table (production); the pool is owned by the caller."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool

    async def close(self) -> None:
        """Nothing to close: the pool belongs to whoever opened it."""

    async def writable(self, timeout_s: float) -> bool:
        """Whether a pooled connection answers, on a primary, within `timeout_s` (readiness).

        Each statement here is its own autocommit transaction: a cancelled call leaves nothing
        open (the pool rolls back or discards a connection returned mid-query)."""
        try:
            async with asyncio.timeout(timeout_s), borrow(self._pool) as conn:
                cursor = await conn.execute("SELECT NOT pg_is_in_recovery()")
                row = await cursor.fetchone()
        except (TimeoutError, StoreUnavailable, psycopg.Error):
            return False
        return row is not None and bool(row[0])

    async def record_message(self, tenant: TenantContext, message: str | None = None) -> None:
        """Count one message in the conversation, creating it (titled by `message`) if new."""
        async with borrow(self._pool) as conn:
            await conn.execute(
                """
                INSERT INTO conversations
                    (company_id, user_id, id, title, created_at, updated_at, message_count)
                VALUES (%s, %s, %s, %s, now(), now(), 1)
                ON CONFLICT (company_id, user_id, id) DO UPDATE
                SET updated_at = excluded.updated_at,
                    message_count = conversations.message_count + 1
                """,
                (
                    tenant.company_id,
                    tenant.user_id,
                    tenant.conversation_id,
                    _title(message or "New conversation"),
                ),
            )

    async def get(
        self, company_id: str, user_id: str, conversation_id: str
    ) -> ConversationSummary | None:
        async with borrow(self._pool) as conn:
            cursor = await conn.execute(
                f"SELECT {_COLUMNS} FROM conversations"
                " WHERE company_id = %s AND user_id = %s AND id = %s",
                (company_id, user_id, conversation_id),
            )
            row = await cursor.fetchone()
        return None if row is None else _summary(row)

    async def list(self, company_id: str, user_id: str) -> list[ConversationSummary]:
        async with borrow(self._pool) as conn:
            cursor = await conn.execute(
                f"SELECT {_COLUMNS} FROM conversations WHERE company_id = %s AND user_id = %s"
                " ORDER BY updated_at DESC LIMIT %s",
                (company_id, user_id, MAX_LISTED),
            )
            rows = await cursor.fetchall()
        return [_summary(r) for r in rows]

    async def delete(self, company_id: str, user_id: str, conversation_id: str) -> bool:
        async with borrow(self._pool) as conn:
            cursor = await conn.execute(
                "DELETE FROM conversations WHERE company_id = %s AND user_id = %s AND id = %s",
                (company_id, user_id, conversation_id),
            )
            return bool(cursor.rowcount > 0)


def _summary(row: tuple[Any, ...]) -> ConversationSummary:
    cid, title, created, updated, count = row
    return ConversationSummary(
        id=str(cid),
        title=str(title),
        created_at=_iso(created),
        updated_at=_iso(updated),
        message_count=int(count),
    )
