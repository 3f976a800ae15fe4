"""The adversarial SQL cases of reference/sql-rag-tenancy.md (b) on PostgreSQL, both layers apart.

Each case checks the guard's verdict (dialect "postgres") and then, calling `run_confined_pg` with
the raw statement as the read-only role (the guard bypassed), that the engine alone still confines
it: row-level security, a READ ONLY transaction, the revoked `set_config`, `statement_timeout`
and a role that owns nothing. Tenant "acme-hvac" is the caller; the others are the victims.
"""

from __future__ import annotations

import asyncio
import json
import tracemalloc
from collections.abc import Awaitable, Iterator
from typing import Any

import psycopg
import pytest
import structlog.testing
from support.pg_database import dsn_for, fresh_database

from agent_service.demo.data import COMPANIES, DEMO_DOCS_DIR, INJECTION_NOTE, TRAP_VALUES
from agent_service.providers.base import QueryResult
from agent_service.sql.executor import SqlExecutionError, SqlLimits, SqlRejected, SqlTimeout
from agent_service.sql.guard import GuardLimits, SqlError, guard_sql
from agent_service.storage.postgres.migrate import migrate
from agent_service.storage.postgres.seed import seed_postgres
from agent_service.storage.postgres.sql_engine import (
    PostgresExecutor,
    UnsafeReaderRole,
    connection_source,
    run_confined_pg,
    verify_reader_role,
)

pytestmark = pytest.mark.postgres

TENANT = "acme-hvac"
OTHERS = ("bluepeak-plumbing", "citywide-electric")
OTHER_TRAPS = tuple(v for c in OTHERS for v in TRAP_VALUES[c])
READER = "agent_sql_reader"


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A fresh database, migrated and seeded once for the module."""
    with fresh_database() as name:

        async def prepare() -> None:
            async def seed(conn: psycopg.AsyncConnection[Any]) -> None:
                await seed_postgres(conn, DEMO_DOCS_DIR, force=True)

            await migrate(dsn_for(name), then=seed)

        asyncio.run(prepare())
        yield name


@pytest.fixture
def executor(database: str) -> PostgresExecutor:
    return PostgresExecutor(dsn_for(database, READER), SqlLimits())


def guard(sql: str) -> str:
    return guard_sql(
        sql, tenant_id=TENANT, dialect="postgres", max_rows=200, limits=GuardLimits()
    ).rewritten


async def engine(
    database: str, sql: str, *, max_rows: int = 5000, timeout_s: float = 2.0
) -> QueryResult:
    """The engine step alone: no guard, the raw statement, as the read-only role."""
    return await run_confined_pg(
        connection_source(dsn_for(database, READER)),
        TENANT,
        sql,
        SqlLimits(max_rows=max_rows, timeout_s=timeout_s),
    )


def plain(database: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Ground truth, as the owner (a superuser: no RLS) with an explicit tenant filter."""
    with psycopg.connect(dsn_for(database)) as conn:
        return conn.execute(sql, params).fetchall()


def assert_no_leak(rows: object) -> None:
    text = json.dumps(rows, default=str)
    for trap in OTHER_TRAPS:
        assert trap not in text
    for company in COMPANIES:
        if company.id != TENANT:
            assert company.id not in text


def fingerprint(database: str) -> list[tuple[Any, ...]]:
    return plain(
        database,
        "SELECT (SELECT count(*) FROM jobs), (SELECT count(*) FROM technicians),"
        " (SELECT count(*) FROM customers), (SELECT sum(revenue) FROM jobs),"
        " (SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace)",
    )


# -- the role itself: what the engine holds no matter what the guard lets through ------------------


def test_the_reader_role_can_bypass_nothing(database: str) -> None:
    (row,) = plain(
        database,
        "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolinherit"
        " FROM pg_roles WHERE rolname = %s",
        (READER,),
    )
    assert row == (False, False, False, False, False)
    owned = plain(
        database,
        "SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles"
        " WHERE rolname = %s)",
        (READER,),
    )
    assert owned == [(0,)]
    forced = plain(
        database,
        "SELECT relname FROM pg_class WHERE relrowsecurity AND relforcerowsecurity"
        " AND relname IN ('jobs', 'customers', 'technicians', 'documents', 'document_chunks')",
    )
    assert len(forced) == 5


async def test_the_service_refuses_to_run_model_sql_as_a_powerful_role(database: str) -> None:
    await verify_reader_role(connection_source(dsn_for(database, READER)))
    with pytest.raises(
        UnsafeReaderRole, match="is a superuser, has BYPASSRLS, may call set_config"
    ):
        await verify_reader_role(connection_source(dsn_for(database)))


@pytest.mark.parametrize(
    ("statement", "denied"),
    [
        ("SET ROLE postgres", "permission denied"),
        ("SELECT set_config('app.tenant_id', 'bluepeak-plumbing', false)", "permission denied"),
        ("INSERT INTO jobs (company_id) VALUES ('acme-hvac')", "permission denied"),
        ("CREATE TABLE stolen (x int)", "permission denied"),
        ("ALTER ROLE agent_sql_reader BYPASSRLS", "must be superuser"),
        ("SELECT * FROM conversations", "permission denied"),
        ("SELECT * FROM checkpoints", "permission denied"),
    ],
)
def test_a_direct_reader_session_is_refused(database: str, statement: str, denied: str) -> None:
    with (
        psycopg.connect(dsn_for(database, READER), autocommit=True) as conn,
        pytest.raises(psycopg.Error, match=denied),
    ):
        conn.execute(statement)


def test_without_a_tenant_the_reader_sees_nothing(database: str) -> None:
    with psycopg.connect(dsn_for(database, READER), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (0,)
        conn.execute("SET app.tenant_id = ''")  # set-then-empty is '' (not NULL): still closed
        assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (0,)


# -- cases 1 to 4: other tenants named, always-true filters, unions, subqueries --------------------


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id, notes FROM jobs WHERE company_id = 'bluepeak-plumbing'",  # case 1
        "SELECT id, notes FROM jobs WHERE 1=1 OR company_id = 'bluepeak-plumbing'",  # case 2
    ],
)
async def test_case_01_02_guard_refuses_and_rls_confines(sql: str, database: str) -> None:
    with pytest.raises(SqlRejected, match="company_id is not available"):
        guard(sql)
    rows = (await engine(database, sql)).rows
    own = {r[0] for r in plain(database, "SELECT id FROM jobs WHERE company_id = %s", (TENANT,))}
    assert {r[0] for r in rows} <= own
    assert_no_leak(rows)


async def test_case_02_always_true_filter_returns_exactly_own_rows(database: str) -> None:
    executor = PostgresExecutor(dsn_for(database, READER), SqlLimits(max_rows=1000))
    result = await executor.run(TENANT, "SELECT id, notes FROM jobs WHERE 1=1 OR id > 0")
    expected = plain(database, "SELECT id, notes FROM jobs WHERE company_id = %s", (TENANT,))
    assert sorted(result.rows) == sorted(expected)
    assert_no_leak(result.rows)


async def test_case_03_union_branches_are_both_filtered(database: str) -> None:
    sql = "SELECT title FROM jobs UNION ALL SELECT name FROM customers"
    result = await PostgresExecutor(dsn_for(database, READER), SqlLimits(max_rows=1000)).run(
        TENANT, sql
    )
    expected = plain(
        database,
        "SELECT title FROM jobs WHERE company_id = %(t)s UNION ALL"
        " SELECT name FROM customers WHERE company_id = %(t)s",
        {"t": TENANT},  # type: ignore[arg-type]
    )
    assert sorted(result.rows) == sorted(expected)
    assert_no_leak(result.rows)
    assert_no_leak((await engine(database, sql)).rows)


async def test_case_04_scalar_subquery_is_filtered(
    executor: PostgresExecutor, database: str
) -> None:
    sql = "SELECT (SELECT group_concat(name, '|') FROM customers)"
    result = await executor.run(TENANT, sql)
    names = set(result.rows[0][0].split("|"))
    assert names == {
        r[0] for r in plain(database, "SELECT name FROM customers WHERE company_id = %s", (TENANT,))
    }
    assert TRAP_VALUES[TENANT][0] in names
    raw = await engine(database, "SELECT (SELECT string_agg(name, '|') FROM customers)")
    assert set(raw.rows[0][0].split("|")) == names


# -- cases 5 to 8: names that reach around the policies -------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM public.jobs",
        "SELECT name FROM customers UNION ALL SELECT name FROM public.customers",
        "SELECT (SELECT count(*) FROM public.jobs)",
    ],
)
async def test_case_05_schema_qualified_tables(sql: str, database: str) -> None:
    with pytest.raises(SqlRejected, match="schema-qualified"):
        guard(sql)
    assert_no_leak((await engine(database, sql)).rows)


async def test_case_06_cte_shadowing_a_table(database: str) -> None:
    sql = "WITH jobs AS (SELECT * FROM technicians) SELECT * FROM jobs"
    with pytest.raises(SqlRejected, match="WITH query may not be named like the table jobs"):
        guard(sql)
    rows = (await engine(database, sql)).rows
    own = plain(database, "SELECT count(*) FROM technicians WHERE company_id = %s", (TENANT,))
    assert len(rows) == own[0][0]
    assert_no_leak(rows)


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT * FROM information_schema.tables", "schema-qualified"),
        ("SELECT * FROM pg_roles", "table pg_roles is not available"),
        ("SELECT * FROM pg_catalog.pg_tables", "schema-qualified"),
        ("SELECT * FROM companies", "table companies is not available"),
        ("SELECT * FROM conversations", "table conversations is not available"),
        ("SELECT * FROM checkpoints", "table checkpoints is not available"),
        ("SELECT * FROM job_overview", "table job_overview is not available"),
    ],
)
def test_case_07_catalogs_and_other_tables_are_rejected_by_the_guard(sql: str, reason: str) -> None:
    with pytest.raises(SqlRejected, match=reason):
        guard(sql)


@pytest.mark.parametrize(
    "table",
    [
        "companies",
        "conversations",
        "checkpoints",
        "checkpoint_writes",
        "documents",
        "document_chunks",
        "active_runs",
        "schema_migrations",
    ],
)
async def test_case_07_engine_refuses_tables_outside_the_sql_path(
    table: str, database: str
) -> None:
    with pytest.raises(SqlRejected, match="permission denied"):
        await engine(database, f"SELECT * FROM {table}")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM generate_series(1, 3)",
        "SELECT * FROM json_each('{\"a\": 1}')",
        "SELECT * FROM pg_ls_dir('.')",
        "SELECT * FROM jobs, unnest(ARRAY[1, 2])",
    ],
)
async def test_case_08_table_valued_functions(sql: str, database: str) -> None:
    with pytest.raises(SqlRejected):
        guard(sql)
    if "pg_ls_dir" in sql:
        with pytest.raises(SqlRejected, match="permission denied"):
            await engine(database, sql)


# -- the view: security_invoker keeps RLS; without it a view leaks --------------------------------


async def test_a_security_invoker_view_keeps_row_level_security(database: str) -> None:
    result = await engine(database, "SELECT count(*), count(DISTINCT company_id) FROM job_overview")
    own = plain(database, "SELECT count(*) FROM jobs WHERE company_id = %s", (TENANT,))
    assert result.rows == ((own[0][0], 1),)


async def test_a_view_without_security_invoker_would_leak(database: str) -> None:
    # the control: why the migration sets security_invoker (the owner here bypasses RLS)
    with psycopg.connect(dsn_for(database), autocommit=True) as conn:
        conn.execute("CREATE VIEW leaky_jobs AS SELECT company_id FROM jobs")
        conn.execute(f"GRANT SELECT ON leaky_jobs TO {READER}")
    try:
        result = await engine(database, "SELECT count(DISTINCT company_id) FROM leaky_jobs")
        assert result.rows == ((len(COMPANIES),),)
    finally:
        with psycopg.connect(dsn_for(database), autocommit=True) as conn:
            conn.execute("DROP VIEW leaky_jobs")


# -- cases 9 to 14: anything that is not a plain read ----------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO jobs (title) VALUES ('x')",
        "UPDATE jobs SET revenue = 0",
        "DELETE FROM jobs",
        "DROP TABLE jobs",
        "TRUNCATE jobs",
        "CREATE TABLE stolen AS SELECT * FROM jobs",
        "CREATE TEMP TABLE stolen (x int)",
        "ALTER TABLE jobs ADD COLUMN x text",
        "COPY jobs TO '/tmp/stolen.csv'",
        "SET ROLE postgres",
        "RESET ROLE",
        "SET app.tenant_id = 'bluepeak-plumbing'",
        "SET statement_timeout = 0",
        "BEGIN",
        "COMMIT",
        "VACUUM",
        "ANALYZE",
        "LOCK TABLE jobs",
        "GRANT SELECT ON jobs TO PUBLIC",
        "SELECT 1; DROP TABLE jobs",  # case 11
        "SELECT 1; SET app.tenant_id = 'bluepeak-plumbing'",
        "WITH x AS (DELETE FROM jobs RETURNING *) SELECT * FROM x",  # case 13
        "SELECT * INTO stolen FROM jobs",  # case 14
        "SELECT * FROM jobs FOR UPDATE",
    ],
)
async def test_case_09_to_14_writes_and_ddl_are_refused_by_both_layers(
    sql: str, database: str
) -> None:
    before = fingerprint(database)
    with pytest.raises(SqlRejected):
        guard(sql)
    with pytest.raises(SqlError):
        await engine(database, sql)
    assert fingerprint(database) == before


# -- cases 15 and 16: dangerous functions ----------------------------------------------------------

SET_CONFIG = (
    "SELECT set_config('app.tenant_id', 'bluepeak-plumbing', true), (SELECT count(*) FROM jobs)"
)


async def test_case_15_set_config_is_refused_by_the_guard_and_by_the_engine(
    executor: PostgresExecutor, database: str
) -> None:
    with pytest.raises(SqlRejected, match="function set_config is not allowed"):
        await executor.run(TENANT, SET_CONFIG)
    with pytest.raises(SqlRejected, match="permission denied for function set_config"):
        await engine(database, SET_CONFIG)


async def test_case_15_the_owner_keeps_set_config_for_maintenance(database: str) -> None:
    # granted back to the migrating role only (pg_dump and restores call it)
    rows = plain(
        database,
        "SELECT has_function_privilege(%s, 'pg_catalog.set_config(text,text,boolean)', 'EXECUTE')",
        (READER,),
    )
    assert rows == [(False,)]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT pg_read_file('/etc/passwd')",
        "SELECT pg_ls_dir('.')",
        "SELECT lo_import('/etc/passwd')",
        "SELECT pg_reload_conf()",
        "SELECT current_setting('data_directory')",
        "SELECT dblink('host=evil', 'SELECT 1')",
    ],
)
async def test_case_16_dangerous_functions(sql: str, database: str) -> None:
    with pytest.raises(SqlRejected, match=r"function \w+ is not allowed"):
        guard(sql)
    with pytest.raises(SqlError):
        await engine(database, sql)


async def test_case_16_a_function_running_sql_still_runs_it_under_rls(database: str) -> None:
    sql = "SELECT query_to_xml('SELECT company_id, notes FROM jobs', true, false, '')"
    with pytest.raises(SqlRejected, match="function query_to_xml is not allowed"):
        guard(sql)
    result = await engine(database, sql)  # the inner query runs as the reader, confined
    assert TENANT in result.rows[0][0]
    assert_no_leak(result.rows)


# -- cases 17 to 20: resource exhaustion ----------------------------------------------------------

INFINITE_CTE = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
)


async def test_case_17_infinite_recursion_rejected_by_the_guard_and_cancelled_by_the_engine(
    database: str,
) -> None:
    with pytest.raises(SqlRejected, match="recursive"):
        guard(INFINITE_CTE)
    with pytest.raises(SqlTimeout):
        await engine(database, INFINITE_CTE, timeout_s=0.3)


async def test_case_18_cartesian_join_is_cancelled_by_statement_timeout(database: str) -> None:
    sql = "SELECT count(*) FROM jobs a, jobs b, jobs c, jobs d, jobs e"
    guard(sql)  # passes the guard: only the engine's deadline bounds it
    executor = PostgresExecutor(dsn_for(database, READER), SqlLimits(timeout_s=0.3))
    with pytest.raises(SqlTimeout, match=r"longer than 0\.3 s"):
        await executor.run(TENANT, sql)
    assert (await executor.run(TENANT, "SELECT count(*) FROM jobs")).rows  # the pool is fine


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT a.id, b.id, c.id FROM jobs a, jobs b, jobs c",
        "SELECT a.id FROM jobs a CROSS JOIN jobs b CROSS JOIN customers c LIMIT 1000000",
    ],
)
async def test_case_19_million_row_results_are_truncated(
    sql: str, executor: PostgresExecutor
) -> None:
    result = await executor.run(TENANT, sql)
    assert result.row_count == executor.limits.max_rows
    assert result.truncated


async def test_case_19_engine_alone_fetches_only_what_it_keeps(database: str) -> None:
    result = await engine(database, "SELECT a.id FROM jobs a, jobs b, jobs c", max_rows=50)
    assert (result.row_count, result.truncated) == (50, True)


async def test_case_19_byte_cap_truncates(database: str) -> None:
    executor = PostgresExecutor(
        dsn_for(database, READER), SqlLimits(max_rows=1000, max_result_bytes=2048)
    )
    result = await executor.run(TENANT, "SELECT notes, title FROM jobs")
    assert result.truncated
    assert 0 < result.row_count < 260


def nested_replace(base: str, levels: int) -> str:
    """The reviewer's shape: each level turns every 'x' into eight, in one step per level."""
    value = f"'{base}'"
    for _ in range(levels):
        value = f"replace({value}, 'x', 'xxxxxxxx')"
    return value


def wide(value: str, columns: int) -> str:
    return "SELECT " + ", ".join(f"{value} AS c{i}" for i in range(columns)) + " FROM jobs"


async def traced_peak(call: Awaitable[QueryResult]) -> tuple[QueryResult, int]:
    """Await `call`; return its result and the peak Python allocation while it ran."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        result = await call
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        if started:
            tracemalloc.stop()
    return result, peak


CAP = SqlLimits().max_result_bytes
PEAK_MARGIN = 512 * 1024  # the connection, the transaction and test bookkeeping


@pytest.mark.parametrize("columns", [4, 8])
async def test_case_19_reviewer_wide_values_are_rejected_by_the_guard(
    columns: int, executor: PostgresExecutor
) -> None:
    with pytest.raises(SqlRejected, match="replace"):
        await executor.run(TENANT, wide(nested_replace("xxx", 6), columns))


async def test_case_19_engine_alone_stops_at_the_byte_cap_as_rows_arrive(database: str) -> None:
    # 4 columns of 12 KiB: 48 KiB a row, 260 rows: 12 MB if every row were fetched first.
    result, peak = await traced_peak(
        engine(database, wide(nested_replace("xxx", 4), 4), max_rows=200)
    )
    assert (result.row_count, result.truncated) == (5, True)
    assert sum(len(v) for row in result.rows for v in row) == 5 * 4 * 3 * 8**4 <= CAP
    assert peak < 4 * CAP + PEAK_MARGIN


async def test_case_19_engine_alone_holds_at_most_the_cap_plus_one_row(database: str) -> None:
    # PostgreSQL has no per-value cap: the reviewer's 768 KiB values, 4 a row, come back from
    # the engine alone; only the first row is fetched before the byte cap stops it.
    row_bytes = 4 * 3 * 8**6
    result, peak = await traced_peak(
        engine(database, wide(nested_replace("xxx", 6), 4), max_rows=20)
    )
    assert (result.row_count, result.truncated) == (0, True)
    assert peak < CAP + row_bytes + PEAK_MARGIN  # fetching 21 rows first held 66 MB


async def test_model_sql_keeps_a_modest_work_mem_when_the_database_default_is_raised(
    database: str,
) -> None:
    async with await psycopg.AsyncConnection.connect(dsn_for(database), autocommit=True) as admin:
        await admin.execute(f"ALTER DATABASE \"{database}\" SET work_mem = '256MB'")
        try:
            result = await engine(database, "SELECT current_setting('work_mem')")
        finally:
            await admin.execute(f'ALTER DATABASE "{database}" RESET work_mem')
    assert result.rows == (("4MB",),)


async def test_case_20_pg_sleep_rejected_by_the_guard_and_cancelled_by_the_engine(
    executor: PostgresExecutor, database: str
) -> None:
    with pytest.raises(SqlRejected, match="function pg_sleep is not allowed"):
        await executor.run(TENANT, "SELECT pg_sleep(60)")
    with pytest.raises(SqlTimeout, match=r"longer than 0\.3 s"):
        await engine(database, "SELECT pg_sleep(60)", timeout_s=0.3)


# -- case 21: a stored injection is data ---------------------------------------------------------


async def test_case_21_stored_injection_is_data_and_runs_no_extra_query(
    executor: PostgresExecutor,
) -> None:
    with structlog.testing.capture_logs() as logs:
        result = await executor.run(TENANT, "SELECT id, notes FROM jobs WHERE notes LIKE 'Ignore%'")
    assert [row[1] for row in result.rows] == [INJECTION_NOTE]
    assert [entry["event"] for entry in logs] == ["sql_query"]
    assert INJECTION_NOTE not in json.dumps(logs)


# -- case 27: the tenant comes from the caller, never from the SQL --------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM jobs /* company_id: bluepeak-plumbing */",
        "SELECT count(*) FROM jobs -- app.tenant_id=bluepeak-plumbing",
        "SELECT count(*) FROM jobs WHERE title <> '%(tenant_id)s'",
    ],
)
async def test_case_27_tenant_claims_in_sql_are_ignored(
    sql: str, executor: PostgresExecutor, database: str
) -> None:
    result = await executor.run(TENANT, sql)
    assert result.rows == tuple(
        plain(database, "SELECT count(*) FROM jobs WHERE company_id = %s", (TENANT,))
    )


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM jobs WHERE %(tenant_id)s IS NOT NULL",
        "SELECT count(*) FROM jobs WHERE $1 IS NOT NULL",
        "SELECT current_setting('app.tenant_id')",
    ],
)
async def test_case_27_sql_cannot_address_the_tenant_binding(
    sql: str, executor: PostgresExecutor
) -> None:
    with pytest.raises(SqlError):
        await executor.run(TENANT, sql)


# -- case 30: errors are sanitised ----------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT nosuchcolumn FROM jobs",
        "SELEC * FROM jobs",
        "SELECT * FROM nosuchtable",
        "SELECT sum(revenue) FROM jobs WHERE status = completed",
        "SELECT 1 / 0 FROM jobs",
        "SELECT CAST(title AS integer) FROM jobs",
        "",
        "x" * 5000,
    ],
)
async def test_case_30_failing_sql_gives_a_sanitised_reason(
    sql: str, executor: PostgresExecutor
) -> None:
    with pytest.raises(SqlError) as caught:
        await executor.run(TENANT, sql)
    reason = caught.value.reason
    assert 0 < len(reason) <= 300
    assert "DETAIL" not in reason and "postgresql://" not in reason
    assert_no_leak(reason)


async def test_an_unreachable_database_is_a_clean_error() -> None:
    executor = PostgresExecutor("postgresql://agent_sql_reader@127.0.0.1:1/nowhere", SqlLimits())
    with pytest.raises(SqlExecutionError, match="not available"):
        await executor.run(TENANT, "SELECT count(*) FROM jobs")
