"""The embedded memory's transactions: one commit per checkpoint, a unit all or nothing, and the
durability setting it opens with."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.base import empty_checkpoint

from agent_service.providers.base import TenantContext
from agent_service.settings import AgentSettings
from agent_service.storage.sqlite.conversations import SqliteConversationStore, count_message
from agent_service.storage.sqlite.memory import Synchronous, ThreadSqliteSaver, open_memory

TENANT = TenantContext(company_id="c", user_id="u", conversation_id="x")
THREAD = "c/u/x"


def _config() -> Any:
    return {"configurable": {"thread_id": THREAD, "checkpoint_ns": ""}}


@asynccontextmanager
async def _memory(tmp_path: Path, **kwargs: Any) -> AsyncIterator[ThreadSqliteSaver]:
    async with open_memory(tmp_path / "memory.sqlite", busy_timeout_s=1.0, **kwargs) as saver:
        yield saver


def _committed(path: Path, sql: str) -> int:
    """What another connection sees: only committed rows."""
    with sqlite3.connect(path) as conn:
        return int(conn.execute(sql).fetchone()[0])


async def test_a_checkpoint_replaces_the_older_ones_in_one_commit(tmp_path: Path) -> None:
    async with _memory(tmp_path) as saver:
        statements: list[str] = []
        await saver.memory.run(lambda: saver.conn.set_trace_callback(statements.append))
        for _ in range(3):
            statements.clear()
            await saver.aput(_config(), empty_checkpoint(), {}, {})
            commits = [s for s in statements if s.strip().upper().startswith("COMMIT")]
            assert len(commits) == 1, statements
        await saver.memory.run(lambda: saver.conn.set_trace_callback(None))
        assert _committed(tmp_path / "memory.sqlite", "SELECT count(*) FROM checkpoints") == 1


async def test_a_unit_that_fails_after_its_checkpoint_stores_neither(tmp_path: Path) -> None:
    """The question's checkpoint and its conversation's count: both or neither."""
    async with _memory(tmp_path) as saver:
        await SqliteConversationStore.sharing(saver)

        def unit() -> None:
            with saver.transaction() as conn:
                saver.put(_config(), empty_checkpoint(), {}, {})
                count_message(conn, TENANT, "hello")
                conn.execute("INSERT INTO no_such_table VALUES (1)")

        with pytest.raises(sqlite3.OperationalError):
            await saver.memory.run(unit)
        path = tmp_path / "memory.sqlite"
        assert _committed(path, "SELECT count(*) FROM checkpoints") == 0
        assert _committed(path, "SELECT count(*) FROM conversations") == 0
        # and the connection is usable afterwards, its saver committing on its own again
        await saver.aput(_config(), empty_checkpoint(), {}, {})
        assert _committed(path, "SELECT count(*) FROM checkpoints") == 1


async def test_a_unit_commits_once_at_its_end(tmp_path: Path) -> None:
    async with _memory(tmp_path) as saver:
        await SqliteConversationStore.sharing(saver)
        path = tmp_path / "memory.sqlite"
        seen: list[int] = []

        def unit() -> None:
            with saver.transaction() as conn:
                saver.put(_config(), empty_checkpoint(), {}, {})
                with saver.transaction():  # nested: joins the outer one
                    count_message(conn, TENANT, "hello")
                seen.append(_committed(path, "SELECT count(*) FROM checkpoints"))

        await saver.memory.run(unit)
        assert seen == [0]  # nothing visible to others before the unit's end
        assert _committed(path, "SELECT count(*) FROM checkpoints") == 1
        assert _committed(path, "SELECT message_count FROM conversations") == 1


@pytest.mark.parametrize(("setting", "level"), [("NORMAL", 1), ("FULL", 2)])
async def test_the_durability_setting_is_the_connections(
    tmp_path: Path, setting: Synchronous, level: int
) -> None:
    async with _memory(tmp_path, synchronous=setting) as saver:
        assert await saver.memory.read(lambda c: c.execute("PRAGMA synchronous").fetchone()[0]) == (
            level
        )
        mode = await saver.memory.read(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0])
        assert mode == "wal"


def test_the_durability_setting_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert AgentSettings(env="test", data_dir=tmp_path).sqlite_synchronous == "NORMAL"
    monkeypatch.setenv("AGENT_SQLITE_SYNCHRONOUS", "FULL")
    assert AgentSettings(env="test", data_dir=tmp_path).sqlite_synchronous == "FULL"
    monkeypatch.setenv("AGENT_SQLITE_SYNCHRONOUS", "OFF")
    with pytest.raises(ValueError, match="sqlite_synchronous"):
        AgentSettings(env="test", data_dir=tmp_path)
