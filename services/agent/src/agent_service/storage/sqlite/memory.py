"""The embedded memory database (`memory.sqlite`): one connection, every write atomic and
cancellation-safe.

The checkpointer and the conversation store share one aiosqlite connection and its lock, so
the process has a single writer and no two of its connections can lock each other out.

Why every write is shielded: aiosqlite runs a queued statement even when the task awaiting it
is cancelled, so a run stopped between a write and its commit used to leave a transaction open
on the connection. The other connection then timed out on `database is locked`, was left inside
its own failed transaction, and pinned a stale snapshot: every later write on it failed at once,
for good, while reads (list, history) kept answering from the stale snapshot.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
import structlog
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

log = structlog.get_logger("agent_service.storage.sqlite.memory")
T = TypeVar("T")


async def atomic_write(
    conn: aiosqlite.Connection,
    lock: asyncio.Lock,
    work: Callable[[], Awaitable[T]],
) -> T:
    """Run `work` (statements on `conn`) then commit, under `lock`, as one unit.

    Shielded: a caller cancelled midway does not stop the unit, which commits or rolls back
    before the lock is free again. Any failure rolls back, so no transaction outlives a call."""

    async def unit() -> T:
        async with lock:
            try:
                result = await work()
                await conn.commit()
            except BaseException:
                await _rollback(conn)
                raise
            return result

    task = asyncio.ensure_future(unit())
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        # the caller left; the write still ends cleanly (and its outcome is logged if it fails)
        task.add_done_callback(_log_abandoned)
        raise


async def _rollback(conn: aiosqlite.Connection) -> None:
    try:
        if conn.in_transaction:
            await conn.rollback()
    except Exception:
        log.exception("sqlite_rollback_failed")


def _log_abandoned(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("sqlite_write_failed_after_cancel", error=repr(task.exception()))


class SafeSqliteSaver(AsyncSqliteSaver):
    """LangGraph's SQLite checkpointer with its writes made atomic and cancellation-safe.

    Its own `aput`, `aput_writes` and `adelete_thread` commit after the statement; cancelled in
    between, they left the connection inside a transaction (see the module's docstring)."""

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await _shielded(self, super().aput(config, checkpoint, metadata, new_versions))

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await _shielded(self, super().aput_writes(config, writes, task_id, task_path))

    async def adelete_thread(self, thread_id: str) -> None:
        await _shielded(self, super().adelete_thread(thread_id))

    _probe: asyncio.Task[None] | None = None

    async def writable(self, timeout_s: float) -> bool:
        """Whether the database takes a write now: `BEGIN IMMEDIATE; ROLLBACK` within `timeout_s`.

        One probe at a time: a call while an earlier one still waits for the lock waits for that
        one (never a pile of probes queued behind a stuck writer)."""
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(_take_write_lock(self.conn, self.lock))
        return await writable(self._probe, timeout_s)


async def _take_write_lock(conn: aiosqlite.Connection, lock: asyncio.Lock) -> None:
    async with lock:
        try:
            await conn.execute("BEGIN IMMEDIATE")
        finally:
            await _rollback(conn)


async def writable(
    probe: asyncio.Future[None] | tuple[aiosqlite.Connection, asyncio.Lock], timeout_s: float
) -> bool:
    """Whether `probe` (or `BEGIN IMMEDIATE; ROLLBACK` on a connection) ends within `timeout_s`."""
    task = (
        probe
        if isinstance(probe, asyncio.Future)
        else asyncio.ensure_future(_take_write_lock(*probe))
    )
    try:
        async with asyncio.timeout(timeout_s):
            await asyncio.shield(task)
    except (TimeoutError, aiosqlite.Error):
        log.warning("sqlite_not_writable", timeout_s=timeout_s)
        return False
    return True


async def _shielded(saver: AsyncSqliteSaver, write: Awaitable[T]) -> T:
    """The saver's own write (it takes the lock and commits), shielded; rolled back on failure."""

    async def unit() -> T:
        try:
            return await write
        except BaseException:
            async with saver.lock:
                await _rollback(saver.conn)
            raise

    task = asyncio.ensure_future(unit())
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(_log_abandoned)
        raise


@asynccontextmanager
async def open_memory(path: Path, *, busy_timeout_s: float) -> AsyncIterator[SafeSqliteSaver]:
    """The checkpointer over `path`, set up: WAL, and a bounded wait for another process's lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    async with aiosqlite.connect(path, timeout=busy_timeout_s) as conn:
        await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        saver = SafeSqliteSaver(conn)
        await saver.setup()
        yield saver
