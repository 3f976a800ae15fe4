"""The embedded memory database (`memory.sqlite`): one connection on one thread, every unit of
work done there in one step.

The checkpointer and the conversation store share the connection (`SqliteMemory`): the process
has a single writer, and no two of its connections can lock each other out. Each operation — a
checkpoint read or write, a conversation update, a prune, the readiness probe — is one function
run on the connection's thread, its statements and its commit (or rollback) together.

Why one step per unit. Before, the connection was aiosqlite's and LangGraph's `AsyncSqliteSaver`
held an asyncio lock around each operation's several round trips to the thread (execute, fetch,
commit), each resumed only when the event loop came back to it. Under load every round trip
waited a turn of a busy loop with the lock held, so the writes of all runs queued behind each
other: at 400 concurrent streams, writing a question took 1.6 s at the median and 3.7 s at p99,
most of the time to first token. Now the loop hands the thread whole units; they run back to
back, and a busy loop delays only the caller that waits for its result.

Why this is cancellation-safe. A unit runs to its end on the thread whatever becomes of the task
that awaits it, and commits or rolls back there: no transaction outlives a call. (A run stopped
between aiosqlite's statement and its commit used to leave a transaction open and wedge the
store for every user; see `tests/agent_service/faults`.)
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar

import structlog
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.sqlite import SqliteSaver

log = structlog.get_logger("agent_service.storage.sqlite.memory")
T = TypeVar("T")

Synchronous = Literal["NORMAL", "FULL"]
"""`PRAGMA synchronous` in WAL mode. NORMAL: a commit survives the process dying (kill -9, an
OOM kill) but the last commits may be lost to a power cut or a kernel crash; each commit costs a
third of FULL's CPU (no fsync per commit). FULL: an fsync per commit, durable through power
loss."""


class SqliteMemory:
    """One SQLite connection owned by one thread; `run` and `write` hand it whole units."""

    def __init__(
        self, path: Path, busy_timeout_s: float, synchronous: Synchronous = "NORMAL"
    ) -> None:
        self._path = path
        self._busy_timeout_s = busy_timeout_s
        self._synchronous = synchronous
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-memory")
        self._conn: sqlite3.Connection | None = None
        self._probe: asyncio.Future[None] | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        """The connection: use it only inside a unit (on the thread)."""
        if self._conn is None:
            raise RuntimeError("the memory database is not open")
        return self._conn

    async def open(self) -> None:
        def connect() -> None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            # used from this one thread only; the flag lets it be closed from the loop's thread
            conn = sqlite3.connect(
                self._path, timeout=self._busy_timeout_s, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            self._conn = conn

        await self.run(connect)

    async def close(self) -> None:
        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await self.run(close)
        self._thread.shutdown(wait=True)

    async def run(self, unit: Callable[[], T]) -> T:
        """`unit()` on the connection's thread. It runs to its end even if the caller is
        cancelled; it must commit what it writes (`write` does)."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, unit)

    async def write(self, unit: Callable[[sqlite3.Connection], T]) -> T:
        """`unit(conn)` then commit, as one unit on the thread; any failure rolls it back."""

        def atomic() -> T:
            conn = self.conn
            try:
                result = unit(conn)
                conn.commit()
            except BaseException:
                _rollback(conn)
                raise
            return result

        return await self.run(atomic)

    async def read(self, unit: Callable[[sqlite3.Connection], T]) -> T:
        """`unit(conn)` on the thread (statements that only read)."""
        return await self.run(partial(unit, self.conn))

    async def writable(self, timeout_s: float) -> bool:
        """Whether the database takes a write now: `BEGIN IMMEDIATE; ROLLBACK` within
        `timeout_s`. One probe at a time: a call while an earlier one still waits for another
        process's lock waits for that one (never a pile of probes queued behind it)."""
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(self.run(self._take_write_lock))
        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.shield(self._probe)
        except (TimeoutError, sqlite3.Error):
            log.warning("sqlite_not_writable", timeout_s=timeout_s)
            return False
        return True

    def _take_write_lock(self) -> None:
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        finally:
            _rollback(conn)


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        if conn.in_transaction:
            conn.rollback()
    except sqlite3.Error:
        log.exception("sqlite_rollback_failed")


# The SQLite saver does not implement `prune`; these statements follow its own schema
# (checkpoints and writes keyed by thread, namespace and checkpoint id).
_PRUNE_OLDER = (
    "DELETE FROM writes WHERE thread_id = ?1 AND checkpoint_ns = ?2 AND checkpoint_id <> ?3",
    "DELETE FROM checkpoints WHERE thread_id = ?1 AND checkpoint_ns = ?2 AND checkpoint_id <> ?3",
)


class ThreadSqliteSaver(SqliteSaver):
    """LangGraph's SQLite checkpointer, its async methods each one unit on the memory's thread.

    The sync `SqliteSaver` does every operation in one function that commits (its `cursor()`),
    over the same tables and serializer as `AsyncSqliteSaver`: databases written by either read
    the same.

    It keeps one checkpoint per conversation: each holds the whole state, so older ones would
    only cost storage, growing quadratically over a long conversation. A `put` drops the
    thread's older checkpoints (and their writes) in the same transaction as it stores the new
    one: one commit per checkpoint (before, the saver's own and the prune's). `transaction`
    makes a larger unit one commit (the question's checkpoint with its conversation's count)."""

    def __init__(self, memory: SqliteMemory) -> None:
        super().__init__(memory.conn)
        self.memory = memory
        self._tx = threading.local()
        """`active` inside `transaction` (on that thread): the saver's own commits wait for it."""

    @contextmanager
    def cursor(self, transaction: bool = True) -> Iterator[sqlite3.Cursor]:
        """The saver's cursor; inside `transaction` the commit is left to it."""
        deferred = getattr(self._tx, "active", False)
        with super().cursor(transaction=transaction and not deferred) as cur:
            yield cur

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """On the memory's thread: what runs inside (checkpoint writes included) is committed
        once at the end, or rolled back if it raises. Nested uses join the outer one."""
        conn = self.conn
        if getattr(self._tx, "active", False):
            yield conn
            return
        self._tx.active = True
        try:
            yield conn
            conn.commit()
        except BaseException:
            _rollback(conn)
            raise
        finally:
            self._tx.active = False

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store `checkpoint` and drop the ones it replaces, one transaction (on the memory's
        thread)."""
        with self.transaction() as conn:
            stored = super().put(config, checkpoint, metadata, new_versions)
            where = stored["configurable"]
            key = (where["thread_id"], where.get("checkpoint_ns", ""), where["checkpoint_id"])
            for statement in _PRUNE_OLDER:
                conn.execute(statement, key)
        return stored

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self.memory.run(partial(self.get_tuple, config))

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        found = await self.memory.run(
            lambda: list(self.list(config, filter=filter, before=before, limit=limit))
        )
        for item in found:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await self.memory.run(
            partial(self._committed, self.put, config, checkpoint, metadata, new_versions)
        )

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await self.memory.run(
            partial(self._committed, self.put_writes, config, writes, task_id, task_path)
        )

    async def adelete_thread(self, thread_id: str) -> None:
        await self.memory.run(partial(self._committed, self.delete_thread, thread_id))

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, Any]:
        return await self.memory.run(
            partial(self.get_delta_channel_history, config=config, channels=channels)
        )

    def _committed(self, operation: Callable[..., T], *args: Any) -> T:
        # SqliteSaver commits in `cursor()`'s finally, even after a failed statement; a failure
        # before its cursor opened would leave nothing to commit. Roll back what a failure left.
        try:
            return operation(*args)
        except BaseException:
            _rollback(self.conn)
            raise


@asynccontextmanager
async def open_memory(
    path: Path, *, busy_timeout_s: float, synchronous: Synchronous = "NORMAL"
) -> AsyncIterator[ThreadSqliteSaver]:
    """The checkpointer over `path`, set up: WAL, and a bounded wait for another process's lock."""
    memory = SqliteMemory(path, busy_timeout_s, synchronous)
    await memory.open()
    try:
        saver = ThreadSqliteSaver(memory)
        await memory.run(saver.setup)
        yield saver
    finally:
        await memory.close()
