"""Conversation ownership: which user of which company owns which conversation.

The messages themselves live in the checkpointer; this table answers "whose is it", lists a user's
conversations and keeps titles. Every lookup is by (company, user, id): another owner's
conversation is indistinguishable from one that does not exist.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from functools import partial
from pathlib import Path
from typing import Protocol

from agent_service.providers.base import TenantContext
from agent_service.storage.sqlite.memory import SqliteMemory, ThreadSqliteSaver
from contracts.agent_api import ConversationSummary

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    company_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    id TEXT NOT NULL,
    title TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    message_count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (company_id, user_id, id)
);
CREATE INDEX IF NOT EXISTS conversations_by_owner
    ON conversations (company_id, user_id, updated_at DESC);
"""
TITLE_CHARS = 80
MAX_LISTED = 200


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def _title(message: str) -> str:
    line = " ".join(message.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1] + "…"


def count_message(
    conn: sqlite3.Connection, tenant: TenantContext, message: str | None = None
) -> None:
    """`SqliteConversationStore.record_message`'s statement on `conn`, not committed: for a unit
    on the memory's thread that commits it with other writes (`ThreadSqliteSaver.transaction`)."""
    now = _now()
    values = (
        tenant.company_id,
        tenant.user_id,
        tenant.conversation_id,
        _title(message or "New conversation"),
        now,
        now,
    )
    conn.execute(
        """
        INSERT INTO conversations
            (company_id, user_id, id, title, created_at, updated_at, message_count)
        VALUES (?, ?, ?, ?, ?, ?, 1)
        ON CONFLICT (company_id, user_id, id)
        DO UPDATE SET updated_at = excluded.updated_at, message_count = message_count + 1
        """,
        values,
    )


class ConversationOwnership(Protocol):
    """Who owns which conversation: `SqliteConversationStore` or `PostgresConversationStore`."""

    async def record_message(self, tenant: TenantContext, message: str | None = None) -> None: ...

    async def get(
        self, company_id: str, user_id: str, conversation_id: str
    ) -> ConversationSummary | None: ...

    async def list(self, company_id: str, user_id: str) -> list[ConversationSummary]: ...

    async def delete(self, company_id: str, user_id: str, conversation_id: str) -> bool: ...

    async def close(self) -> None: ...

    async def writable(self, timeout_s: float) -> bool:
        """Whether the store takes a write within `timeout_s` (readiness)."""
        ...


class SqliteConversationStore:
    """SQLite-backed ownership table (the embedded default).

    Shares the checkpointer's connection and thread (`sharing`): one writer per database, every
    write one unit on that thread, committed or rolled back there even when its caller is
    cancelled (`memory.SqliteMemory`)."""

    def __init__(self, memory: SqliteMemory, *, owns_memory: bool = False) -> None:
        self._memory = memory
        self._owns_memory = owns_memory

    @classmethod
    async def sharing(cls, saver: ThreadSqliteSaver) -> SqliteConversationStore:
        """The store in the checkpointer's database, over its connection and thread."""
        store = cls(saver.memory)
        await store._create()
        return store

    @classmethod
    async def open(cls, path: Path) -> SqliteConversationStore:
        """A store with its own connection (tools and tests; the service uses `sharing`)."""
        memory = SqliteMemory(path, busy_timeout_s=5.0)
        await memory.open()
        store = cls(memory, owns_memory=True)
        await store._create()
        return store

    async def _create(self) -> None:
        def create(conn: sqlite3.Connection) -> None:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)

        await self._memory.write(create)

    async def close(self) -> None:
        if self._owns_memory:
            await self._memory.close()

    async def writable(self, timeout_s: float) -> bool:
        return await self._memory.writable(timeout_s)

    @property
    def memory(self) -> SqliteMemory:
        """The connection and thread the store writes through."""
        return self._memory

    async def record_message(self, tenant: TenantContext, message: str | None = None) -> None:
        """Count one message in the conversation, creating it (titled by `message`) if new."""
        await self._memory.write(partial(count_message, tenant=tenant, message=message))

    async def get(
        self, company_id: str, user_id: str, conversation_id: str
    ) -> ConversationSummary | None:
        row = await self._memory.read(
            lambda conn: conn.execute(
                "SELECT id, title, created_at, updated_at, message_count FROM conversations "
                "WHERE company_id = ? AND user_id = ? AND id = ?",
                (company_id, user_id, conversation_id),
            ).fetchone()
        )
        return None if row is None else _summary(row)

    async def list(self, company_id: str, user_id: str) -> list[ConversationSummary]:
        rows = await self._memory.read(
            lambda conn: conn.execute(
                "SELECT id, title, created_at, updated_at, message_count FROM conversations "
                "WHERE company_id = ? AND user_id = ? ORDER BY updated_at DESC LIMIT ?",
                (company_id, user_id, MAX_LISTED),
            ).fetchall()
        )
        return [_summary(r) for r in rows]

    async def delete(self, company_id: str, user_id: str, conversation_id: str) -> bool:
        def delete(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "DELETE FROM conversations WHERE company_id = ? AND user_id = ? AND id = ?",
                (company_id, user_id, conversation_id),
            )
            return cursor.rowcount > 0

        return await self._memory.write(delete)


def _summary(row: tuple[object, ...]) -> ConversationSummary:
    cid, title, created, updated, count = row
    return ConversationSummary(
        id=str(cid),
        title=str(title),
        created_at=str(created),
        updated_at=str(updated),
        message_count=int(str(count)),
    )
