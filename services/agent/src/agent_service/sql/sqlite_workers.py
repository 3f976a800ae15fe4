"""Worker processes for the SQLite engine step: SQLite prepares a statement before any deadline
can act (its progress handler runs only while executing, `interrupt()` does not stop a prepare),
and inlining CTEs can grow a short query's tree exponentially while it is prepared. In a worker
the step has an address-space cap and a hard deadline: past it the worker is killed and replaced,
so neither the agent's memory nor its threads pay for a query bomb, whatever the guard let through.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import resource
import threading
import weakref
from collections.abc import Mapping
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Final

from agent_service.providers.base import QueryResult
from agent_service.sql.guard import SqlError, SqlRejected

__all__ = ["SqliteWorkers"]

_GRACE_S: Final = 1.0
"""Past the query's own deadline, how long the worker may take to answer before it is killed."""
_START_TIMEOUT_S: Final = 30.0
_ENGINE_MODULE: Final = "agent_service.sql.executor"
_MEMORY_MESSAGE: Final = "the query needed more memory than allowed and was stopped"


class SqliteWorkers:
    """Up to `size` long-lived worker processes, each capped at `memory_bytes` above its start."""

    def __init__(self, size: int = 2, memory_bytes: int = 256 * 1024 * 1024) -> None:
        if size < 1 or memory_bytes < 16 * 1024 * 1024:
            raise ValueError("size must be >= 1 and memory_bytes >= 16 MiB")
        self._memory_bytes = memory_bytes
        self._slots = threading.BoundedSemaphore(size)
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        # Workers are daemons; stop them when the pool is dropped without close() too.
        weakref.finalize(self, _stop_all, self._all)

    def run(
        self,
        db_path: Path,
        tenant_id: str,
        sql: str,
        params: Mapping[str, Any],
        limits: Any,
    ) -> QueryResult:
        """Run `run_confined` in a worker (blocking; call it from a thread)."""
        from agent_service.sql.executor import SqlExecutionError, SqlTimeout

        with self._slots:
            worker = self._take()
            try:
                reply = worker.call(
                    (str(db_path), tenant_id, sql, dict(params), limits),
                    timeout_s=limits.timeout_s + _GRACE_S,
                )
            except TimeoutError:
                self._discard(worker)
                raise SqlTimeout(
                    f"the query ran longer than {limits.timeout_s:g} s and was stopped"
                ) from None
            except (EOFError, OSError):
                self._discard(worker)  # killed by its memory cap (or crashed)
                raise SqlExecutionError(_MEMORY_MESSAGE) from None
            self._idle.put(worker)
        kind, *rest = reply
        if kind == "ok":
            columns, rows, truncated = rest
            return QueryResult(sql=sql, columns=columns, rows=rows, truncated=truncated)
        error_kind, reason = rest
        cls = {"rejected": SqlRejected, "timeout": SqlTimeout}.get(error_kind, SqlExecutionError)
        raise cls(reason)

    def close(self) -> None:
        """Stop every worker (idempotent)."""
        with self._lock:
            self._closed = True
            workers = list(self._all)
            self._all.clear()
        for worker in workers:
            worker.stop()

    def _take(self) -> _Worker:
        with contextlib.suppress(queue.Empty):
            worker = self._idle.get_nowait()
            if worker.alive():
                return worker
            self._discard(worker)
        with self._lock:
            if self._closed:
                from agent_service.sql.executor import SqlExecutionError

                raise SqlExecutionError("the business database is not available")
        try:
            worker = _Worker(self._memory_bytes)
        except (EOFError, OSError):
            from agent_service.sql.executor import SqlExecutionError

            raise SqlExecutionError("the business database is not available") from None
        with self._lock:
            self._all.add(worker)
        return worker

    def _discard(self, worker: _Worker) -> None:
        with self._lock:
            self._all.discard(worker)
        worker.stop()


def _stop_all(workers: set[_Worker]) -> None:
    for worker in list(workers):
        worker.stop()


class _Worker:
    def __init__(self, memory_bytes: int) -> None:
        # Never fork the threaded agent itself: workers fork from the stdlib's single-threaded
        # fork server, which imports the engine once (a spawned worker took ~1-2 s to start).
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([_ENGINE_MODULE])
        self._conn, child = context.Pipe()
        self._process: BaseProcess = context.Process(
            target=_serve, args=(child, memory_bytes), daemon=True, name="agent-sql-worker"
        )
        self._process.start()
        child.close()
        # The query's deadline starts once the worker has imported what it runs.
        if not self._conn.poll(_START_TIMEOUT_S) or self._conn.recv() != ("ready",):
            self.stop()
            raise OSError("the SQL worker did not start")

    def call(self, request: tuple[Any, ...], *, timeout_s: float) -> tuple[Any, ...]:
        self._conn.send(request)
        if not self._conn.poll(timeout_s):
            raise TimeoutError
        reply: tuple[Any, ...] = self._conn.recv()
        return reply

    def alive(self) -> bool:
        return self._process.is_alive()

    def stop(self) -> None:
        self._conn.close()
        if self._process.is_alive():
            self._process.kill()
        self._process.join(timeout=5)
        self._process.close()


def _serve(conn: Connection, memory_bytes: int) -> None:  # pragma: no cover - in the worker
    """The worker's loop: cap the address space, then answer one request at a time."""
    from agent_service.sql.executor import SqlTimeout, run_confined

    _cap_memory(memory_bytes)
    conn.send(("ready",))
    while True:
        try:
            db_path, tenant_id, sql, params, limits = conn.recv()
        except (EOFError, OSError):
            return
        try:
            result = run_confined(Path(db_path), tenant_id, sql, params, limits)
            reply: tuple[Any, ...] = ("ok", result.columns, result.rows, result.truncated)
        except SqlError as error:
            kind = "rejected" if isinstance(error, SqlRejected) else "error"
            reply = ("err", "timeout" if isinstance(error, SqlTimeout) else kind, error.reason)
        except MemoryError:
            reply = ("err", "error", _MEMORY_MESSAGE)
        conn.send(reply)


def _cap_memory(memory_bytes: int) -> None:  # pragma: no cover - in the worker
    try:
        with open("/proc/self/statm") as statm:
            current = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        current = 0
    limit = current + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
