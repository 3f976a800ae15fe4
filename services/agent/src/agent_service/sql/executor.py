"""The tenant-enforcing SQLite executor: every query passes the guard, then runs on a fresh
read-only connection where the engine itself confines reads to the tenant (temp views plus an
authorizer), under row, byte, length and time caps. Rows are fetched one at a time and sized as
they arrive, so a wide result never sits in memory past `max_result_bytes` plus one row. Errors
are sanitised so they can be shown to a model.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import structlog

from agent_service.providers.base import QueryResult
from agent_service.sql.budget import ResultBudget
from agent_service.sql.guard import (
    Dialect,
    GuardedQuery,
    GuardLimits,
    SqlError,
    SqlRejected,
    guard_sql,
)
from agent_service.sql.schema import TENANT_COLUMN, TENANT_TABLES
from agent_service.sql.sqlite_workers import SqliteWorkers
from contracts.agent_api import ID_PATTERN, MAX_ID_CHARS

__all__ = [
    "ENGINE_FUNCTIONS",
    "SqlError",
    "SqlExecutionError",
    "SqlLimits",
    "SqlRejected",
    "SqlTimeout",
    "SqliteExecutor",
    "install_deadline",
    "run_confined",
]

_ID_RE: Final = re.compile(ID_PATTERN)
_PATH_RE: Final = re.compile(r"(?:[A-Za-z]:)?(?:[\\/][^\s'\"\\/]+)+[\\/]?")
_INNER_VIEW_RE: Final = re.compile(r"tenant_[0-9a-f]{32}_")
_PROGRESS_STEPS: Final = 1000
"""SQLite VM instructions between deadline checks: frequent enough to stop within milliseconds."""

ENGINE_FUNCTIONS: Final = frozenset(
    {"count", "sum", "avg", "min", "max", "total", "group_concat", "string_agg", "coalesce",
     "ifnull", "iif", "nullif", "round", "abs", "floor", "ceil", "ceiling", "sign", "lower",
     "upper", "length", "substr", "substring", "trim", "ltrim", "rtrim", "replace", "instr",
     "date", "time", "datetime", "julianday", "strftime", "unixepoch", "current_date",
     "current_time", "current_timestamp", "like", "glob", "row_number", "rank", "dense_rank",
     "lag", "lead", "first_value", "last_value", "ntile", "percent_rank", "cume_dist"}
)  # fmt: skip
"""What the authorizer lets a statement call (names as SQLite reports them, lower-cased)."""


class SqlTimeout(SqlError):
    """The query ran past its deadline and was stopped."""


class SqlExecutionError(SqlError):
    """The database could not run the query (the reason is sanitised)."""


@dataclass(frozen=True, slots=True)
class SqlLimits:
    """Every cap on the SQL path, in one place."""

    max_rows: int = 200
    max_result_bytes: int = 256 * 1024
    timeout_s: float = 2.0
    max_sql_chars: int = 4000
    max_joins: int = 8
    max_nesting: int = 4
    max_value_bytes: int = 256 * 1024
    """SQLITE_LIMIT_LENGTH: the largest string or blob any expression may build (one value of
    the result can never be worth more than the whole result's cap)."""
    max_string_nesting: int = 3
    """Deepest string-building call inside another (replace, concat, ||, group_concat)."""
    max_expanded_nodes: int = 20_000
    """Largest syntax tree once WITH queries and subqueries are inlined (`sql.expansion`)."""
    engine_workers: int = 2
    """SQLite: worker processes running queries (at most this many at once)."""
    engine_memory_bytes: int = 256 * 1024 * 1024
    """SQLite: address space a worker may add for one query before it is stopped."""

    def __post_init__(self) -> None:
        if self.max_rows < 1 or self.max_result_bytes < 1 or self.max_value_bytes < 1024:
            raise ValueError("SQL row and byte limits must be positive (max_value_bytes >= 1024)")
        if not self.timeout_s > 0:
            raise ValueError("timeout_s must be positive")
        if self.max_sql_chars < 1 or self.max_joins < 0 or self.max_nesting < 0:
            raise ValueError("max_sql_chars must be positive, max_joins and max_nesting >= 0")
        if self.max_string_nesting < 1:
            raise ValueError("max_string_nesting must be at least 1")
        if self.max_expanded_nodes < 100 or self.engine_workers < 1:
            raise ValueError("max_expanded_nodes must be >= 100 and engine_workers >= 1")

    def guard_limits(self) -> GuardLimits:
        return GuardLimits(
            max_sql_chars=self.max_sql_chars,
            max_joins=self.max_joins,
            max_nesting=self.max_nesting,
            max_string_nesting=self.max_string_nesting,
            max_expanded_nodes=self.max_expanded_nodes,
        )


class GuardedExecutor:
    """One design for every engine: guard the SQL, run it where the engine confines it to the
    tenant, audit the verdict. Subclasses supply only the engine step."""

    dialect: Dialect
    engine: str

    def __init__(self, limits: SqlLimits) -> None:
        self._limits = limits
        self._log = structlog.get_logger()

    @property
    def limits(self) -> SqlLimits:
        return self._limits

    async def run(self, tenant_id: str, sql: str) -> QueryResult:
        """Guard, then run `sql` confined to `tenant_id`; raise a `SqlError` subclass on failure."""
        started = time.perf_counter()
        try:
            # Off the event loop: parsing a 4,000-character query takes up to ~0.1 s.
            guarded = await asyncio.to_thread(
                guard_sql,
                sql,
                tenant_id=tenant_id,
                dialect=self.dialect,
                max_rows=self._limits.max_rows,
                limits=self._limits.guard_limits(),
            )
            result = await self._execute(tenant_id, guarded)
        except SqlError as error:
            self._audit(tenant_id, sql, started, verdict=_verdict(error), reason=error.reason)
            raise
        self._audit(
            tenant_id, sql, started, verdict="ok", rows=result.row_count, truncated=result.truncated
        )
        return QueryResult(
            sql=guarded.original,
            columns=result.columns,
            rows=result.rows,
            truncated=result.truncated,
        )

    async def run_unguarded(self, tenant_id: str, sql: str) -> QueryResult:
        """The engine step alone, on the raw statement (no guard): what the database itself
        holds. For the suites that test each layer without the others."""
        return await self._execute(
            tenant_id, GuardedQuery(original=sql, rewritten=sql, params={}, tables=())
        )

    async def _execute(self, tenant_id: str, guarded: GuardedQuery) -> QueryResult:
        raise NotImplementedError

    def _audit(self, tenant_id: str, sql: str, started: float, **fields: Any) -> None:
        # One line per query: who, what, the verdict and the size, never the rows themselves.
        self._log.info(
            "sql_query",
            tenant=tenant_id,
            engine=self.engine,
            sql=sql[: self._limits.max_sql_chars],
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
            **fields,
        )


class SqliteExecutor(GuardedExecutor):
    """Runs model-written SQL for one tenant at a time against the demo SQLite database."""

    dialect = "sqlite"
    engine = "sqlite"

    def __init__(
        self,
        db_path: Path,
        limits: SqlLimits | None = None,
        *,
        workers: SqliteWorkers | None = None,
    ) -> None:
        super().__init__(limits or SqlLimits())
        self._db_path = Path(db_path)
        self._owns_workers = workers is None
        self._workers = workers or SqliteWorkers(
            self._limits.engine_workers, self._limits.engine_memory_bytes
        )

    async def _execute(self, tenant_id: str, guarded: GuardedQuery) -> QueryResult:
        return await asyncio.to_thread(
            self._workers.run,
            self._db_path,
            tenant_id,
            guarded.rewritten,
            guarded.params,
            self._limits,
        )

    def close(self) -> None:
        """Stop the engine's worker processes (when this executor started them)."""
        if self._owns_workers:
            self._workers.close()


def _verdict(error: SqlError) -> str:
    if isinstance(error, SqlRejected):
        return "rejected"
    if isinstance(error, SqlTimeout):
        return "timeout"
    return "error"


def run_confined(
    db_path: Path,
    tenant_id: str,
    sql: str,
    params: Mapping[str, Any] | Sequence[Any],
    limits: SqlLimits,
) -> QueryResult:
    """The engine step alone (no guard): run `sql` where SQLite itself confines it to the tenant.

    Public so tests can show the engine blocks what the guard would have rejected.
    """
    if not (0 < len(tenant_id) <= MAX_ID_CHARS and _ID_RE.fullmatch(tenant_id)):
        raise ValueError("tenant_id does not match the contract's id pattern")
    conn = _connect(Path(db_path), limits)
    try:
        inner = _create_tenant_views(conn, tenant_id)
        conn.execute("PRAGMA query_only = 1")
        authorizer = _Authorizer(inner)
        conn.set_authorizer(authorizer)
        deadline = install_deadline(conn, limits.timeout_s)
        budget = ResultBudget(limits.max_rows, limits.max_result_bytes)
        try:
            cursor = conn.execute(sql, params)
            columns = tuple(d[0] for d in cursor.description or ())
            # One row at a time (free in-process): stop at the row or byte cap instead of
            # materialising max_rows + 1 rows of up to max_value_bytes per value first.
            while (row := cursor.fetchone()) is not None and budget.add(row):
                pass
        except sqlite3.Error as error:
            if deadline.expired:
                raise SqlTimeout(
                    f"the query ran longer than {limits.timeout_s:g} s and was stopped"
                ) from None
            if authorizer.denied is not None:
                raise SqlRejected(authorizer.denied) from None
            raise _engine_error(error, limits) from None
    finally:
        conn.close()
    return QueryResult(sql=sql, columns=columns, rows=budget.rows, truncated=budget.truncated)


def _connect(db_path: Path, limits: SqlLimits) -> sqlite3.Connection:
    if not db_path.is_file():
        raise SqlExecutionError("the business database is not available")
    try:
        conn = sqlite3.connect(
            f"{db_path.resolve().as_uri()}?mode=ro",
            uri=True,
            cached_statements=0,  # the authorizer runs at prepare time: never reuse a statement
            isolation_level=None,
        )
    except sqlite3.Error:
        raise SqlExecutionError("the business database is not available") from None
    # mode=ro and query_only do not stop ATTACH (it can create files); this limit does.
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, limits.max_value_bytes)
    conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, min(limits.max_value_bytes, 200_000))
    return conn


def _create_tenant_views(conn: sqlite3.Connection, tenant_id: str) -> dict[str, str]:
    """Create the tenant views; return the secret name of the view that reads each main table.

    Temp views shadow the main tables for unqualified names; the authorizer then refuses any
    read of a main table whose innermost view is not the secret one. SQLite reports a CTE's name
    in the same place as a view's, so a name the query could write (`customers`) would let
    `WITH customers AS (SELECT * FROM main.customers)` through: the reading view's name is
    random per connection, and the public view reads it. The tenant id matches ID_PATTERN (no
    quotes), and is escaped anyway, because views cannot take parameters.
    """
    literal = "'" + tenant_id.replace("'", "''") + "'"
    salt = secrets.token_hex(16)
    inner: dict[str, str] = {}
    for table, columns in TENANT_TABLES.items():
        cols = ", ".join(f'"{c}"' for c in (TENANT_COLUMN, *columns))
        inner[table] = f"tenant_{salt}_{table}"
        conn.execute(
            f'CREATE TEMP VIEW "{inner[table]}" AS SELECT {cols} FROM main."{table}"'
            f' WHERE "{TENANT_COLUMN}" = {literal}'
        )
        conn.execute(f'CREATE TEMP VIEW "{table}" AS SELECT {cols} FROM temp."{inner[table]}"')
    return inner


class _Authorizer:
    """The engine's policy: plain SELECTs over the tenant views and allow-listed functions only.

    Remembers the first thing it denied, by name only, so the error can say what was refused.
    """

    def __init__(self, inner: Mapping[str, str]) -> None:
        self.denied: str | None = None
        self._inner = inner

    def __call__(
        self, action: int, arg1: str | None, arg2: str | None, db: str | None, src: str | None
    ) -> int:
        if action == sqlite3.SQLITE_SELECT:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_READ:
            if db == "temp" and (arg1 in TENANT_TABLES or arg1 in self._inner.values()):
                return sqlite3.SQLITE_OK  # a column of a tenant view
            if db == "main" and arg1 is not None and src == self._inner.get(arg1, ""):
                return sqlite3.SQLITE_OK  # the base table, reached only through its tenant view
            if db is None:
                # Only a recursive CTE reading itself arrives without a database name.
                return self._deny("recursive queries are not allowed")
            return self._deny(f"table {arg1} is not available")
        if action == sqlite3.SQLITE_FUNCTION:
            if (arg2 or "").lower() in ENGINE_FUNCTIONS:
                return sqlite3.SQLITE_OK
            return self._deny(f"function {(arg2 or '').lower()} is not allowed")
        if action == sqlite3.SQLITE_RECURSIVE:
            # Reported after the READ of the CTE itself, which is the less helpful reason.
            self.denied = "recursive queries are not allowed"
            return sqlite3.SQLITE_DENY
        # PRAGMA, ATTACH, writes, DDL, transactions, ...
        return self._deny("only SELECT statements are allowed")

    def _deny(self, reason: str) -> int:
        if self.denied is None:
            self.denied = reason
        return sqlite3.SQLITE_DENY


class _Deadline:
    def __init__(self, timeout_s: float) -> None:
        self._at = time.monotonic() + timeout_s
        self.expired = False

    def __call__(self) -> int:
        if time.monotonic() > self._at:
            self.expired = True
            return 1  # non-zero aborts the running statement with "interrupted"
        return 0


def install_deadline(conn: sqlite3.Connection, timeout_s: float) -> _Deadline:
    """Make every statement on `conn` abort once `timeout_s` has passed; `.expired` says it did."""
    deadline = _Deadline(timeout_s)
    conn.set_progress_handler(deadline, _PROGRESS_STEPS)
    return deadline


def _engine_error(error: sqlite3.Error, limits: SqlLimits) -> SqlError:
    message = str(error)
    lowered = message.lower()
    if any(m in lowered for m in ("not authorized", "authorization denied", "prohibited")):
        return SqlRejected("the query uses a table, column or function that is not available")
    if "too many attached" in lowered:
        return SqlRejected("ATTACH is not allowed")
    if "readonly" in lowered or "read-only" in lowered or "query_only" in lowered:
        return SqlRejected("the database is read-only")
    if "too big" in lowered:
        return SqlExecutionError(
            f"a value in the query is too large (the limit is {limits.max_value_bytes} bytes)"
        )
    clean = _PATH_RE.sub("<path>", _INNER_VIEW_RE.sub("", message))[:200]
    return SqlExecutionError(f"the database could not run the query: {clean}")
