"""One table of cross-tenant and resource attacks, run on both engines (SQLite and PostgreSQL) and
in two modes: through the guarded executor, and the engine alone (`run_unguarded`: the raw
statement, guard disabled). Defence in depth is only real if each layer holds without the others:
every case must leak nothing in both modes on both engines. `{schema}` is the engine's schema of
the real tables (`main`, `public`). Tenant "acme-hvac" is the caller; the others are the victims.
"""

from __future__ import annotations

import asyncio
import json
import resource
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool
from support.pg_database import dsn_for, fresh_database

from agent_service.demo.data import COMPANIES, DEMO_DOCS_DIR, TRAP_VALUES, seed_database
from agent_service.providers.base import QueryResult
from agent_service.sql.executor import GuardedExecutor, SqliteExecutor, SqlLimits
from agent_service.sql.guard import SqlError
from agent_service.sql.sqlite_workers import SqliteWorkers
from agent_service.storage.postgres.migrate import migrate
from agent_service.storage.postgres.seed import seed_postgres
from agent_service.storage.postgres.sql_engine import PostgresExecutor

Engine = Literal["sqlite", "postgres"]
TENANT = "acme-hvac"
OTHER_TRAPS = tuple(v for c, traps in TRAP_VALUES.items() if c != TENANT for v in traps)
OTHER_IDS = tuple(c.id for c in COMPANIES if c.id != TENANT)
SCHEMA = {"sqlite": "main", "postgres": "public"}

ENGINES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return seed_database(tmp_path_factory.mktemp("table") / "demo.db").path


@pytest.fixture(scope="module")
def workers() -> Iterator[SqliteWorkers]:
    pool = SqliteWorkers(size=2)
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    with fresh_database() as name:

        async def prepare() -> None:
            async def seed(conn: psycopg.AsyncConnection[Any]) -> None:
                await seed_postgres(conn, DEMO_DOCS_DIR, force=True)

            await migrate(dsn_for(name), then=seed)

        asyncio.run(prepare())
        yield name


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Engine:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def make_executor(engine: Engine, request: pytest.FixtureRequest) -> Callable[..., GuardedExecutor]:
    """`make_executor(**limits)`: the engine's executor, as the service builds it."""

    # Resolved here, outside the test's event loop (the PostgreSQL fixture runs its own).
    where = request.getfixturevalue("sqlite_db" if engine == "sqlite" else "pg_database")
    workers = request.getfixturevalue("workers") if engine == "sqlite" else None

    def make(**limits: Any) -> GuardedExecutor:
        settings = SqlLimits(**{"max_rows": 5000, "max_result_bytes": 2**22, **limits})
        if engine == "sqlite":
            return SqliteExecutor(where, settings, workers=workers)
        return PostgresExecutor(dsn_for(where, "agent_sql_reader"), settings)

    return make


@pytest.fixture(params=["guarded", "engine alone"])
def run(request: pytest.FixtureRequest, make_executor: Any) -> Any:
    """`await run(sql, **limits)`: through the guard, or the engine alone (guard disabled)."""
    alone = request.param == "engine alone"

    async def call(sql: str, **limits: Any) -> QueryResult:
        executor = make_executor(**limits)
        if alone:
            return await executor.run_unguarded(TENANT, sql)  # type: ignore[no-any-return]
        return await executor.run(TENANT, sql)  # type: ignore[no-any-return]

    return call


def leaked(rows: object) -> list[str]:
    text = json.dumps(rows, default=str)
    return [value for value in (*OTHER_TRAPS, *OTHER_IDS) if value in text]


# Each reads (or tries to read) another company's rows; `{schema}` is main / public.
CROSS_TENANT = [
    "SELECT id, notes FROM jobs WHERE company_id = 'bluepeak-plumbing'",
    "SELECT notes, company_id FROM jobs WHERE 1=1 OR company_id <> 'acme-hvac'",
    "SELECT notes FROM jobs WHERE notes LIKE '%TRAP%'",
    "SELECT name FROM customers WHERE name LIKE '%Trap%'",
    "SELECT * FROM {schema}.jobs",
    "SELECT name, company_id FROM {schema}.customers",
    "SELECT name FROM customers UNION ALL SELECT name FROM {schema}.customers",
    "SELECT c.name FROM {schema}.customers c JOIN jobs j ON j.customer_id = c.id",
    "SELECT name FROM customers WHERE id IN (SELECT id FROM {schema}.customers)",
    "SELECT (SELECT max(name) FROM {schema}.customers WHERE name LIKE 'B%Trap%')",
    # issue 13 item 6: a CTE named like the table it reads (the SQLite authorizer took it)
    "WITH customers AS (SELECT * FROM {schema}.customers) SELECT name, company_id FROM customers",
    "WITH jobs AS (SELECT * FROM {schema}.jobs) SELECT notes, company_id FROM jobs",
    "WITH c AS (SELECT * FROM {schema}.customers) SELECT name, company_id FROM c",
    "WITH customers AS (SELECT * FROM customers) SELECT name FROM {schema}.customers",
    "SELECT * FROM (WITH x AS (SELECT name FROM {schema}.customers) SELECT name FROM x) s",
    "WITH technicians AS (SELECT name FROM {schema}.customers) SELECT name FROM technicians",
    # item 7: names resolved by scope (a CTE in a nested query shadows nothing outside it)
    "SELECT name FROM customers WHERE EXISTS "
    "(WITH customers AS (SELECT 1 AS x) SELECT x FROM customers)",
    "SELECT 1 AS customers WHERE 'Bluepeak Trap Holdings' IN (SELECT name FROM {schema}.customers)",
    "WITH RECURSIVE r(n) AS (SELECT name FROM {schema}.customers UNION SELECT n FROM r) "
    "SELECT n FROM r",
    "SELECT t.name FROM technicians t, {schema}.technicians u WHERE t.id = u.id OR u.id > 0",
    "SELECT name FROM customers UNION SELECT name FROM customers WHERE company_id <> 'acme-hvac'",
]


@pytest.mark.parametrize("template", CROSS_TENANT)
async def test_no_case_leaks_on_either_engine_in_either_mode(
    engine: Engine, run: Any, template: str
) -> None:
    try:
        result = await run(template.format(schema=SCHEMA[engine]))
    except SqlError:
        return  # refused (by the guard, or by the engine's own policy): nothing read
    assert leaked(result.rows) == []


ENGINE_SPECIFIC = {
    "sqlite": [
        "SELECT name FROM temp.customers",
        "SELECT name FROM sqlite_temp_master",
        "SELECT sql FROM sqlite_master",
        "SELECT name, company_id FROM companies",
        "SELECT 1 AS customers WHERE 'x' IN main.customers",
        "SELECT count(*) FROM jobs WHERE 'Bluepeak Trap Holdings' IN main.customers",
    ],
    "postgres": [
        "SELECT query FROM pg_stat_activity",
        "SELECT datname FROM pg_database",
        "SELECT datname FROM pg_stat_database",
        "SELECT pg_stat_get_activity(NULL)",
        "SELECT set_config('app.tenant_id', 'bluepeak-plumbing', true), "
        "(SELECT string_agg(name, ',') FROM customers)",
        "SELECT query_to_xml('SELECT company_id, notes FROM jobs', true, false, '')",
        "SELECT name, company_id FROM companies",
    ],
}


@pytest.mark.parametrize("index", range(max(len(v) for v in ENGINE_SPECIFIC.values())))
async def test_catalogs_and_engine_specifics_leak_nothing(
    engine: Engine, run: Any, index: int
) -> None:
    cases = ENGINE_SPECIFIC[engine]
    if index >= len(cases):
        return
    try:
        result = await run(cases[index])
    except SqlError:
        return
    assert leaked(result.rows) == []


# -- item 8: session state never outlives a query on a pooled connection -------------------------


@pytest.mark.postgres
async def test_advisory_locks_are_refused_to_the_reader_and_never_survive(
    pg_database: str,
) -> None:
    executor = PostgresExecutor(dsn_for(pg_database, "agent_sql_reader"), SqlLimits())
    with pytest.raises(SqlError, match="permission denied"):
        await executor.run_unguarded(TENANT, "SELECT pg_advisory_lock(1)")
    with psycopg.connect(dsn_for(pg_database)) as owner:
        held = owner.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
        assert held.fetchone() == (0,)


@pytest.mark.postgres
async def test_a_pooled_connection_is_reset_and_stays_usable(pg_database: str) -> None:
    # DISCARD ALL after each query once dropped psycopg's auto-prepared statements under it
    # ("prepared statement _pg3_4 does not exist" from the sixth query on a connection).
    async with AsyncConnectionPool(
        dsn_for(pg_database, "agent_sql_reader"),
        min_size=1,
        max_size=1,
        kwargs={"autocommit": True},  # as the service opens it
        open=False,
    ) as pool:
        executor = PostgresExecutor(pool, SqlLimits())
        for _ in range(8):
            result = await executor.run(TENANT, "SELECT count(*) FROM jobs")
            assert result.rows[0][0] > 0
        async with pool.connection() as conn:
            row = await (
                await conn.execute("SELECT current_setting('app.tenant_id', true)")
            ).fetchone()
        assert row in ((None,), ("",))  # nothing of the last query is left on the session


# -- item 1: query bombs stop at the deadline and within memory, whatever the guard let through --


def cte_bomb(levels: int, cast: str = "") -> str:
    """Under 900 characters: each CTE names the previous one's column twice, so the inlined
    expression doubles at every level while the statement is prepared."""
    chain = [f"a{i} AS (SELECT t || t AS t FROM a{i - 1})" for i in range(1, levels + 1)]
    head = f"a0 AS (SELECT '{'x' * 32}'{cast} AS t)"
    return f"WITH {head}, {', '.join(chain)} SELECT length(t), t FROM a{levels}"


@pytest.mark.parametrize("levels", [19, 21])
async def test_a_query_bomb_stops_by_the_deadline_on_sqlite_alone(
    sqlite_db: Path, workers: SqliteWorkers, levels: int
) -> None:
    # Before: 6-13 s past a 2 s deadline and the agent from 172 MB to 1.7 GB (in-process prepare).
    executor = SqliteExecutor(sqlite_db, SqlLimits(timeout_s=0.5), workers=workers)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with pytest.raises(SqlError, match=r"stopped|too large"):
        await executor.run_unguarded(TENANT, cte_bomb(levels))
    assert time.perf_counter() - started < 0.5 + 1.0 + 1.0  # deadline + grace + a loaded CI
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50 * 1024  # KiB
    ok = await executor.run_unguarded(TENANT, "SELECT count(*) FROM jobs")  # a fresh worker
    assert ok.rows[0][0] > 0


@pytest.mark.postgres
async def test_a_query_bomb_stops_by_the_deadline_on_postgres_alone(pg_database: str) -> None:
    # 19 levels plan for ~3 s on this server, and planning ignores statement_timeout.
    executor = PostgresExecutor(dsn_for(pg_database, "agent_sql_reader"), SqlLimits(timeout_s=0.3))
    started = time.perf_counter()
    with pytest.raises(SqlError, match="stopped"):
        await executor.run_unguarded(TENANT, cte_bomb(19, "::text"))
    assert time.perf_counter() - started < 0.3 + 1.0 + 1.0
    # The server-side cost is bounded by the guard, not here: wait for the backend to finish
    # planning (it cannot be interrupted before) so the database can be dropped.
    with psycopg.connect(dsn_for(pg_database), autocommit=True) as owner:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            (busy,) = owner.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = 'agent_sql_reader'"
                " AND datname = current_database()"
            ).fetchone() or (0,)
            if busy == 0:
                break
            owner.execute("SELECT pg_sleep(0.1)")


@pytest.mark.parametrize("levels", [10, 21])
async def test_the_guard_refuses_a_query_bomb_before_it_runs(
    make_executor: Any, engine: Engine, levels: int
) -> None:
    executor = make_executor()
    started = time.perf_counter()
    with pytest.raises(SqlError, match="grows too large"):
        await executor.run(TENANT, cte_bomb(levels, "" if engine == "sqlite" else "::text"))
    assert time.perf_counter() - started < 1.0
