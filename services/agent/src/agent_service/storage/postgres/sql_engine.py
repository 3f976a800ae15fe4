"""The tenant-enforcing PostgreSQL executor: the same guard as SQLite, then the engine confines the
statement again. It runs as a login role without ownership or BYPASSRLS, in a READ ONLY
transaction with `app.tenant_id`, a `statement_timeout` and a modest `work_mem` set locally,
through a server-side cursor (one statement, extended protocol), fetching in small batches sized
against `max_result_bytes` and stopping at the row or byte cap, then ROLLBACK.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, Final

import psycopg
import sqlglot
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlglot import exp
from sqlglot.errors import SqlglotError

from agent_service.providers.base import QueryResult
from agent_service.sql.budget import ResultBudget
from agent_service.sql.executor import GuardedExecutor, SqlExecutionError, SqlLimits, SqlTimeout
from agent_service.sql.guard import TENANT_PARAM, GuardedQuery, SqlError, SqlRejected
from agent_service.storage.postgres.documents import ConnectionSource
from contracts.agent_api import ID_PATTERN, MAX_ID_CHARS

__all__ = [
    "PostgresExecutor",
    "UnsafeReaderRole",
    "connection_source",
    "prepare_statement",
    "run_confined_pg",
    "verify_reader_role",
]

_ID_RE: Final = re.compile(ID_PATTERN)
_CURSOR_NAME: Final = "agent_sql"
_GRACE_S: Final = 1.0
"""Past `statement_timeout`, how long the client waits before it drops the connection: a backend
checks for cancellation while executing but not everywhere while planning."""
_WORK_MEM: Final = "4MB"
"""Per sort or hash: larger ones spill to disk instead of growing the backend (and a server-wide
raise for other workloads does not reach model SQL)."""


_ROLE_CHECK: Final = """
SELECT r.rolsuper, r.rolbypassrls,
       has_function_privilege('pg_catalog.set_config(text, text, boolean)', 'EXECUTE'),
       EXISTS (SELECT FROM pg_catalog.pg_class c
               WHERE c.relowner = r.oid AND c.relname IN ('jobs', 'customers', 'technicians'))
FROM pg_catalog.pg_roles r WHERE r.rolname = current_user
"""


class UnsafeReaderRole(RuntimeError):
    """The SQL path's login could bypass row-level security or change its own tenant."""


async def verify_reader_role(connect: ConnectionSource) -> None:
    """Refuse to run model SQL as a role that is superuser, BYPASSRLS, a table owner, or may call
    set_config (a misconfigured `AGENT_SQL_DATABASE_URL` must not start)."""
    async with connect() as conn:
        cursor = await conn.execute(_ROLE_CHECK)
        row = await cursor.fetchone()
    if row is None:
        raise UnsafeReaderRole("the SQL path's login role is not visible in pg_roles")
    problems = [
        why
        for flag, why in zip(
            row,
            ("is a superuser", "has BYPASSRLS", "may call set_config()", "owns tenant tables"),
            strict=True,
        )
        if flag
    ]
    if problems:
        raise UnsafeReaderRole(
            "the SQL path's login role " + ", ".join(problems) + "; point AGENT_SQL_DATABASE_URL "
            "at agent_sql_reader (see docs/deployment.md#roles)"
        )


class PostgresExecutor(GuardedExecutor):
    """Runs model-written SQL for one tenant at a time against PostgreSQL, as the reader role."""

    dialect = "postgres"
    engine = "postgres"

    def __init__(self, pool_or_dsn: AsyncConnectionPool[Any] | str, limits: SqlLimits) -> None:
        super().__init__(limits)
        self._connect = connection_source(pool_or_dsn)

    async def run_unguarded(self, tenant_id: str, sql: str) -> QueryResult:
        """The engine step alone on the raw statement: no guard, no rewrite, no sqlglot."""
        return await run_confined_pg(self._connect, tenant_id, sql, self._limits)

    async def _execute(self, tenant_id: str, guarded: GuardedQuery) -> QueryResult:
        statement = prepare_statement(guarded.rewritten, tenant_id)
        return await run_confined_pg(self._connect, tenant_id, statement, self._limits)


def connection_source(pool_or_dsn: AsyncConnectionPool[Any] | str) -> ConnectionSource:
    """Borrow from the pool, or open a fresh autocommit connection per use from a DSN."""
    if isinstance(pool_or_dsn, AsyncConnectionPool):
        return pool_or_dsn.connection
    dsn = pool_or_dsn

    @asynccontextmanager
    async def connect() -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            yield conn

    return connect


def prepare_statement(rewritten: str, tenant_id: str) -> str:
    """The guard's Postgres rewrite as the engine runs it: the tenant bound as a literal (the
    statement then has no parameters, so a `%` in it needs no doubling), and LIKE made
    case-insensitive as it is in SQLite, so one statement means the same on both engines."""
    _check_tenant(tenant_id)
    try:
        tree = sqlglot.parse_one(rewritten, dialect="postgres")
    except SqlglotError:
        raise SqlRejected("the query could not be prepared for the database") from None

    def bind(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Placeholder) and node.name == TENANT_PARAM:
            return exp.Literal.string(tenant_id)
        if isinstance(node, exp.Placeholder):
            raise SqlRejected("query parameters are not allowed; write values inline")
        if isinstance(node, exp.Like):
            return exp.ILike(this=node.this, expression=node.expression)
        return node

    return tree.transform(bind).sql(dialect="postgres")


def _check_tenant(tenant_id: str) -> None:
    if not (0 < len(tenant_id) <= MAX_ID_CHARS and _ID_RE.fullmatch(tenant_id)):
        raise ValueError("tenant_id does not match the contract's id pattern")


async def run_confined_pg(
    connect: ConnectionSource, tenant_id: str, statement: str, limits: SqlLimits
) -> QueryResult:
    """The engine step alone (no guard): run `statement` where PostgreSQL itself confines it.

    Public so tests can show the engine blocks what the guard would have rejected.
    """
    _check_tenant(tenant_id)
    timeout_ms = max(1, round(limits.timeout_s * 1000))
    budget = ResultBudget(limits.max_rows, limits.max_result_bytes)
    try:
        # The server checks statement_timeout while executing, not everywhere while planning:
        # past the deadline and a grace the caller gets its answer, and the query is cancelled
        # in the background (psycopg waits for the server before it gives the connection up).
        # The deadline starts once a connection is held (the pool bounds the wait for one).
        connected = asyncio.Event()
        task = asyncio.ensure_future(
            _confined(connect, tenant_id, statement, timeout_ms, budget, connected)
        )
        try:
            held = asyncio.ensure_future(connected.wait())
            try:
                await asyncio.wait({task, held}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                held.cancel()
            columns = await asyncio.wait_for(asyncio.shield(task), limits.timeout_s + _GRACE_S)
        except (TimeoutError, asyncio.CancelledError) as stop:
            task.cancel()
            _ABANDONED.add(task)
            task.add_done_callback(_forget)
            if isinstance(stop, asyncio.CancelledError):
                raise
            raise pg_errors.QueryCanceled("client deadline") from None
    except pg_errors.QueryCanceled:
        raise SqlTimeout(
            f"the query ran longer than {limits.timeout_s:g} s and was stopped"
        ) from None
    except PoolTimeout:
        raise SqlExecutionError("the business database is busy; try again") from None
    except psycopg.Error as error:
        raise _engine_error(error) from None
    return QueryResult(sql=statement, columns=columns, rows=budget.rows, truncated=budget.truncated)


_ABANDONED: Final[set[asyncio.Task[tuple[str, ...]]]] = set()
"""Queries past the client deadline, still being cancelled (held so they are not collected)."""


def _forget(task: asyncio.Task[tuple[str, ...]]) -> None:
    _ABANDONED.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: it was reported as a timeout already


async def _confined(
    connect: ConnectionSource,
    tenant_id: str,
    statement: str,
    timeout_ms: int,
    budget: ResultBudget,
    connected: asyncio.Event,
) -> tuple[str, ...]:
    async with connect() as conn:
        connected.set()
        try:
            return await _run(conn, tenant_id, statement, timeout_ms, budget)
        finally:
            if not conn.closed:
                await conn.execute("ROLLBACK", prepare=False)
                # Session state must not outlive the query on a pooled connection: advisory
                # locks, prepared statements, temp objects, session settings. Nothing here is
                # prepared server-side (prepare=False), so psycopg's cache never names a
                # statement this has deallocated.
                await conn.execute("DISCARD ALL", prepare=False)


async def _run(
    conn: psycopg.AsyncConnection[Any],
    tenant_id: str,
    statement: str,
    timeout_ms: int,
    budget: ResultBudget,
) -> tuple[str, ...]:
    await conn.execute("BEGIN READ ONLY", prepare=False)
    await conn.execute(
        sql.SQL("SET LOCAL app.tenant_id = {}").format(sql.Literal(tenant_id)).as_string(conn),
        prepare=False,
    )
    await conn.execute(f"SET LOCAL statement_timeout = {timeout_ms}", prepare=False)
    await conn.execute(f"SET LOCAL work_mem = '{_WORK_MEM}'", prepare=False)
    # A named (server-side) cursor: DECLARE takes one SELECT through the extended protocol (no
    # stacked statements), and FETCH transfers only the rows we keep.
    async with conn.cursor(name=_CURSOR_NAME) as cursor:
        await cursor.execute(statement.encode())
        columns = tuple(d.name for d in cursor.description or ())
        await _fetch_into(cursor, budget)
    return columns


async def _fetch_into(cursor: psycopg.AsyncServerCursor[Any], budget: ResultBudget) -> None:
    """FETCH in batches the budget sizes (one row first), converting and accounting each row as
    it arrives, until the budget is full or the cursor is exhausted."""
    while True:
        wanted = budget.next_batch()
        batch = await cursor.fetchmany(wanted)
        for row in batch:
            if not budget.add(tuple(_plain(v) for v in row)):
                return
        if len(batch) < wanted:
            return


def _engine_error(error: psycopg.Error) -> SqlError:
    primary = (error.diag.message_primary or "").strip()[:200]
    if isinstance(error, pg_errors.InsufficientPrivilege):
        return SqlRejected(f"permission denied: {primary or 'not available'}")
    if isinstance(error, pg_errors.ReadOnlySqlTransaction):
        return SqlRejected("the database is read-only")
    if "multiple commands" in primary:
        return SqlRejected("exactly one statement is allowed")
    if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError) and not primary:
        return SqlExecutionError("the business database is not available")
    # The primary message names only the query's own objects (no DETAIL, no paths, no values).
    return SqlExecutionError(f"the database could not run the query: {primary or 'failed'}")


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        # numeric results: whole numbers (sums of integers) stay int, the rest float, as in SQLite
        exponent = value.as_tuple().exponent
        return int(value) if isinstance(exponent, int) and exponent >= 0 else float(value)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if value is None or isinstance(value, int | float | str | bytes):
        return value
    return str(value)
