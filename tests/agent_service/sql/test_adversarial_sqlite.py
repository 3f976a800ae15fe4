"""The adversarial cases of reference/sql-rag-tenancy.md (b) that concern the SQL and document
layer, against a real seeded SQLite file and real per-tenant FTS5 stores.

Each SQL case checks two layers separately: the guard's verdict, and (calling `run_confined`, the
engine step, with the raw statement so the guard is bypassed) that SQLite alone still confines it.
Cases 25, 26 and 29 are about conversations and checkpointer keys and are tested with the service;
case 20 (`pg_sleep` vs `statement_timeout`) and the Postgres half of case 15 await the Postgres
executor. Tenant "acme-hvac" is the caller throughout; the others are the victims.
"""

from __future__ import annotations

import json
import sqlite3
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import pytest
import structlog.testing

from agent_service.demo.data import (
    COMPANIES,
    DEMO_DOCS_DIR,
    INJECTION_NOTE,
    TRAP_VALUES,
    seed_database,
)
from agent_service.providers.base import QueryResult
from agent_service.sql.executor import (
    SqlExecutionError,
    SqliteExecutor,
    SqlLimits,
    SqlRejected,
    SqlTimeout,
    install_deadline,
    run_confined,
)
from agent_service.sql.guard import GuardLimits, SqlError, guard_sql
from agent_service.sql.schema import curated_schema
from agent_service.storage.sqlite.documents import SqliteDocumentStore, seed_documents

TENANT = "acme-hvac"
OTHERS = ("bluepeak-plumbing", "citywide-electric")
OTHER_TRAPS = tuple(v for c in OTHERS for v in TRAP_VALUES[c])
DEMO_DOCS = DEMO_DOCS_DIR


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return seed_database(tmp_path_factory.mktemp("adversarial") / "demo.db").path


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> SqliteDocumentStore:
    store = SqliteDocumentStore(tmp_path_factory.mktemp("adversarial-docs"))
    seed_documents(store, DEMO_DOCS)
    return store


@pytest.fixture
def executor(db: Path) -> SqliteExecutor:
    return SqliteExecutor(db, SqlLimits())


def guard(sql: str, dialect: Literal["sqlite", "postgres"] = "sqlite") -> str:
    return guard_sql(
        sql, tenant_id=TENANT, dialect=dialect, max_rows=200, limits=GuardLimits()
    ).rewritten


def engine(db: Path, sql: str, *, max_rows: int = 5000, timeout_s: float = 2.0) -> QueryResult:
    """The engine step alone: no guard, the raw statement."""
    return run_confined(db, TENANT, sql, {}, SqlLimits(max_rows=max_rows, timeout_s=timeout_s))


def plain(db: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Ground truth, straight from the file with an explicit tenant filter."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def assert_no_leak(rows: object) -> None:
    text = json.dumps(rows, default=str)
    for trap in OTHER_TRAPS:
        assert trap not in text
    for company in COMPANIES:
        if company.id != TENANT:
            assert company.id not in text


def table_fingerprint(db: Path) -> list[tuple[Any, ...]]:
    return plain(
        db,
        "SELECT (SELECT count(*) FROM jobs), (SELECT count(*) FROM technicians),"
        " (SELECT count(*) FROM customers), (SELECT total(revenue) FROM jobs),"
        " (SELECT group_concat(name) FROM sqlite_master)",
    )


# -- cases 1 and 2: the model names another tenant ------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id, notes FROM jobs WHERE company_id = 'bluepeak-plumbing'",  # case 1
        "SELECT id, notes FROM jobs WHERE 1=1 OR company_id = 'bluepeak-plumbing'",  # case 2
    ],
)
def test_case_01_02_guard_refuses_the_tenant_column(sql: str, db: Path) -> None:
    with pytest.raises(SqlRejected, match="company_id is not available"):
        guard(sql)
    rows = engine(db, sql).rows
    expected = plain(db, "SELECT id FROM jobs WHERE company_id = ?", (TENANT,))
    assert {r[0] for r in rows} <= {r[0] for r in expected}  # engine: own rows or none
    assert_no_leak(rows)


async def test_case_02_always_true_filter_returns_only_own_rows(
    executor: SqliteExecutor, db: Path
) -> None:
    result = await SqliteExecutor(db, SqlLimits(max_rows=1000)).run(
        TENANT, "SELECT id, notes FROM jobs WHERE 1=1 OR id > 0"
    )
    expected = plain(db, "SELECT id, notes FROM jobs WHERE company_id = ?", (TENANT,))
    assert sorted(result.rows) == sorted(expected)
    assert_no_leak(result.rows)


# -- cases 3 and 4: UNION and scalar subqueries are filtered branch by branch ----------------------


async def test_case_03_union_branches_are_both_filtered(executor: SqliteExecutor, db: Path) -> None:
    sql = "SELECT title FROM jobs UNION ALL SELECT name FROM customers"
    executor = SqliteExecutor(db, SqlLimits(max_rows=1000))
    result = await executor.run(TENANT, sql)
    expected = plain(
        db,
        "SELECT title FROM jobs WHERE company_id = ?1 UNION ALL"
        " SELECT name FROM customers WHERE company_id = ?1",
        (TENANT,),
    )
    assert sorted(result.rows) == sorted(expected)
    assert_no_leak(result.rows)
    assert_no_leak(engine(db, sql).rows)


async def test_case_04_scalar_subquery_is_filtered(executor: SqliteExecutor, db: Path) -> None:
    sql = "SELECT (SELECT group_concat(name, '|') FROM customers)"
    result = await executor.run(TENANT, sql)
    names = set(result.rows[0][0].split("|"))
    assert names == {
        r[0] for r in plain(db, "SELECT name FROM customers WHERE company_id = ?", (TENANT,))
    }
    assert TRAP_VALUES[TENANT][0] in names
    assert_no_leak(result.rows)
    assert_no_leak(engine(db, sql).rows)


# -- cases 5 to 8: names that reach around the tenant views ----------------------------------------


@pytest.mark.parametrize(
    ("sql", "dialect"),
    [
        ("SELECT * FROM main.jobs", "sqlite"),
        ("SELECT * FROM public.jobs", "postgres"),
        ("SELECT * FROM jobs j JOIN main.customers c ON c.id = j.customer_id", "sqlite"),
        ('SELECT * FROM "main"."jobs"', "sqlite"),
    ],
)
def test_case_05_schema_qualified_tables_are_rejected(
    sql: str, dialect: Literal["sqlite", "postgres"]
) -> None:
    with pytest.raises(SqlRejected, match="schema-qualified"):
        guard(sql, dialect)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM main.jobs",
        "SELECT name FROM customers UNION ALL SELECT name FROM main.customers",
        "SELECT (SELECT count(*) FROM main.jobs)",
    ],
)
def test_case_05_engine_refuses_main_tables(sql: str, db: Path) -> None:
    with pytest.raises(SqlRejected, match="not available"):
        engine(db, sql)


def test_case_06_cte_shadowing_a_table_is_rejected(db: Path) -> None:
    sql = "WITH jobs AS (SELECT * FROM technicians) SELECT * FROM jobs"
    with pytest.raises(SqlRejected, match="WITH query may not be named like the table jobs"):
        guard(sql)
    rows = engine(db, sql).rows  # engine: the CTE still reads the tenant's view only
    assert len(rows) == len(plain(db, "SELECT 1 FROM technicians WHERE company_id = ?", (TENANT,)))
    assert_no_leak(rows)


@pytest.mark.parametrize(
    ("sql", "dialect", "reason"),
    [
        ("SELECT sql FROM sqlite_master", "sqlite", "table sqlite_master is not available"),
        ("SELECT * FROM sqlite_temp_master", "sqlite", "not available"),
        ("SELECT * FROM sqlite_schema", "sqlite", "not available"),
        ("SELECT * FROM companies", "sqlite", "table companies is not available"),
        ("SELECT * FROM information_schema.tables", "postgres", "schema-qualified"),
        ("SELECT * FROM pg_roles", "postgres", "table pg_roles is not available"),
        ("SELECT * FROM pg_catalog.pg_tables", "postgres", "schema-qualified"),
    ],
)
def test_case_07_catalogs_are_rejected(
    sql: str, dialect: Literal["sqlite", "postgres"], reason: str
) -> None:
    with pytest.raises(SqlRejected, match=reason):
        guard(sql, dialect)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT sql FROM sqlite_master",
        "SELECT sql FROM sqlite_temp_master",
        "SELECT * FROM companies",
    ],
)
def test_case_07_engine_refuses_catalogs(sql: str, db: Path) -> None:
    with pytest.raises(SqlRejected, match="not available"):
        engine(db, sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM pragma_table_info('jobs')",
        "SELECT * FROM json_each('[1,2]')",
        "SELECT name FROM pragma_table_list",
        "SELECT * FROM jobs, pragma_database_list",
    ],
)
def test_case_08_table_valued_functions_are_rejected(sql: str, db: Path) -> None:
    with pytest.raises(SqlRejected):
        guard(sql)
    with pytest.raises(SqlRejected):
        engine(db, sql)


# -- cases 9 to 14: anything that is not a plain read --------------------------------------------


def test_case_09_pragma_is_rejected_and_writes_still_fail(db: Path) -> None:
    before = table_fingerprint(db)
    with pytest.raises(SqlRejected, match="PRAGMA"):
        guard("PRAGMA query_only=0")
    with pytest.raises(SqlRejected):
        engine(db, "PRAGMA query_only=0")
    for write in ("DELETE FROM main.jobs", "UPDATE main.jobs SET revenue = 0"):
        with pytest.raises(SqlError):
            engine(db, write)
    assert table_fingerprint(db) == before


def test_case_10_attach_is_rejected_and_creates_no_file(db: Path, tmp_path: Path) -> None:
    target = tmp_path / "other.db"
    sql = f"ATTACH '{target}' AS o"
    with pytest.raises(SqlRejected, match="ATTACH"):
        guard(sql)
    with pytest.raises(SqlRejected):
        engine(db, sql)
    with pytest.raises(SqlError):
        engine(db, f"SELECT * FROM jobs; ATTACH '{target}' AS o")
    assert not target.exists()


def test_case_11_stacked_statements_are_rejected_and_the_table_survives(db: Path) -> None:
    before = table_fingerprint(db)
    with pytest.raises(SqlRejected, match="exactly one statement"):
        guard("SELECT 1; DROP TABLE jobs")
    with pytest.raises(SqlError):
        engine(db, "SELECT 1; DROP TABLE jobs")
    with pytest.raises(SqlRejected):
        engine(db, "DROP TABLE main.jobs")
    assert table_fingerprint(db) == before


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO jobs (title) VALUES ('x')",
        "INSERT INTO main.jobs (company_id, customer_id, title, status, scheduled_on)"
        " VALUES ('acme-hvac', 1, 'x', 'scheduled', '2026-01-01')",
        "UPDATE jobs SET revenue = 0",
        "UPDATE main.jobs SET revenue = 0",
        "DELETE FROM jobs",
        "DELETE FROM main.jobs",
        "DROP TABLE jobs",
        "DROP VIEW jobs",
        "CREATE TABLE stolen AS SELECT * FROM jobs",
        "CREATE TEMP TABLE stolen (x)",
        "CREATE TEMP VIEW leak AS SELECT * FROM main.jobs",
        "ALTER TABLE jobs ADD COLUMN x TEXT",
        "REPLACE INTO jobs (id) VALUES (1)",
        "BEGIN",
        "VACUUM",
        "REINDEX",
        "ANALYZE",
        "DETACH DATABASE temp",
    ],
)
def test_case_12_writes_and_ddl_are_rejected_by_both_layers(sql: str, db: Path) -> None:
    before = table_fingerprint(db)
    with pytest.raises(SqlRejected):
        guard(sql)
    with pytest.raises(SqlError):
        engine(db, sql)
    assert table_fingerprint(db) == before


def test_case_12_vacuum_into_is_rejected_and_writes_no_file(db: Path, tmp_path: Path) -> None:
    target = tmp_path / "copy.db"
    with pytest.raises(SqlRejected):
        guard(f"VACUUM INTO '{target}'")
    with pytest.raises(SqlError):
        engine(db, f"VACUUM INTO '{target}'")
    assert not target.exists()


def test_case_13_data_modifying_cte_is_rejected(db: Path) -> None:
    before = table_fingerprint(db)
    sql = "WITH x AS (DELETE FROM jobs RETURNING *) SELECT * FROM x"
    with pytest.raises(SqlRejected, match="only SELECT"):
        guard(sql)
    with pytest.raises(SqlError):
        engine(db, sql)
    assert table_fingerprint(db) == before


def test_case_14_select_into_is_rejected(db: Path) -> None:
    with pytest.raises(SqlRejected, match="SELECT INTO"):
        guard("SELECT * INTO stolen FROM jobs")
    with pytest.raises(SqlRejected, match="SELECT INTO"):
        guard("SELECT * INTO stolen FROM jobs", "postgres")
    with pytest.raises(SqlError):
        engine(db, "SELECT * INTO stolen FROM jobs")


# -- cases 15 and 16: dangerous functions ----------------------------------------------------------


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_case_15_set_config_is_rejected(dialect: Literal["sqlite", "postgres"], db: Path) -> None:
    sql = (
        "SELECT set_config('app.tenant_id', 'bluepeak-plumbing', true), (SELECT count(*) FROM jobs)"
    )
    with pytest.raises(SqlRejected, match="function set_config is not allowed"):
        guard(sql, dialect)
    with pytest.raises(SqlError):
        engine(db, sql)


@pytest.mark.parametrize(
    ("sql", "engine_too"),
    [
        ("SELECT load_extension('/tmp/evil')", True),
        ("SELECT randomblob(1000000000)", True),
        ("SELECT zeroblob(1000000000)", True),
        ("SELECT length(hex(zeroblob(1000000000)))", True),
        ("SELECT pg_read_file('/etc/passwd')", False),
        ("SELECT readfile('/etc/passwd')", False),
        ("SELECT fts3_tokenizer('simple')", True),
        ("SELECT printf('%.*c', 1000000000, 'x')", True),
        ("SELECT sqlite_version()", True),
    ],
)
def test_case_16_dangerous_functions_are_rejected(sql: str, engine_too: bool, db: Path) -> None:
    with pytest.raises(SqlRejected, match=r"function \w+ is not allowed"):
        guard(sql)
    if engine_too:
        with pytest.raises(SqlRejected, match="is not allowed"):
            engine(db, sql)


def test_case_16_engine_caps_value_size_even_with_allowed_functions(db: Path) -> None:
    sql = (
        "SELECT replace(group_concat(notes), 'a', (SELECT group_concat(title) FROM jobs)) FROM jobs"
    )
    with pytest.raises(SqlExecutionError, match="too large"):
        run_confined(db, TENANT, sql, {}, SqlLimits(max_value_bytes=4096))


def nested_replace(base: str, levels: int) -> str:
    """The reviewer's shape: each level turns every 'x' into eight, one VM step per level."""
    value = f"'{base}'"
    for _ in range(levels):
        value = f"replace({value}, 'x', 'xxxxxxxx')"
    return value


def wide(value: str, columns: int) -> str:
    return "SELECT " + ", ".join(f"{value} AS c{i}" for i in range(columns)) + " FROM jobs"


def traced_peak(call: Callable[[], object]) -> tuple[object, int]:
    """Run `call`; return its result (or the SqlError it raised) and the peak Python allocation."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        outcome: object = call()
    except SqlError as error:
        outcome = error
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        if started:
            tracemalloc.stop()
    return outcome, peak


CAP = SqlLimits().max_result_bytes
PEAK_MARGIN = 512 * 1024  # connection, views, authorizer and test bookkeeping


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        (wide(nested_replace("xxx", 6), 4), "replace"),  # 786 KiB values: 633 MB before the fix
        (wide(nested_replace("xxx", 6), 8), "replace"),  # 1.27 GB before the fix
        (wide(nested_replace("xxx", 2), 1), "lengthen text at most 16 times"),
        ("SELECT replace('x', 'x', '" + "y" * 900 + "') FROM jobs", "at most 16 times"),
        ("SELECT replace(notes, 'a', title) FROM jobs", "literal text"),
        ("SELECT replace(notes, 'a', (SELECT group_concat(title) FROM jobs)) FROM jobs", "literal"),
        ("SELECT concat(concat(concat(concat(title, 'a'), 'b'), 'c'), 'd') FROM jobs", "3 deep"),
        (
            "SELECT replace(group_concat(title || (SELECT group_concat(notes) FROM jobs)),"
            " 'a', 'b') FROM jobs",
            "3 deep",
        ),
    ],
)
def test_case_16_guard_bounds_string_building(
    sql: str, reason: str, dialect: Literal["sqlite", "postgres"]
) -> None:
    with pytest.raises(SqlRejected, match=reason):
        guard(sql, dialect)


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT name || ' (' || city || ')' AS label FROM customers",
        # Parenthesised `||` is still one concatenation: text grows by its operands only.
        "SELECT ((((title || 'a') || 'b') || 'c') || 'd') FROM jobs",
        "SELECT replace(status, '_', ' ') FROM jobs",
        "SELECT replace(replace(title, '&', 'and'), '/', ' or ') FROM jobs",
        "SELECT group_concat(replace(title, 'a', 'b')) FROM jobs",
    ],
)
def test_case_16_guard_keeps_ordinary_string_functions(
    sql: str, dialect: Literal["sqlite", "postgres"]
) -> None:
    guard(sql, dialect)


async def test_case_16_reviewer_query_is_rejected_before_it_runs(executor: SqliteExecutor) -> None:
    with pytest.raises(SqlRejected, match="replace"):
        await executor.run(TENANT, wide(nested_replace("xxx", 6), 8))


def test_case_16_engine_alone_refuses_values_over_the_result_cap(db: Path) -> None:
    outcome, peak = traced_peak(lambda: engine(db, wide(nested_replace("xxx", 6), 8), max_rows=200))
    assert isinstance(outcome, SqlExecutionError)
    assert "too large (the limit is 262144 bytes)" in outcome.reason
    assert peak < 4 * CAP + PEAK_MARGIN


def test_case_16_engine_alone_stops_at_the_byte_cap_as_rows_arrive(db: Path) -> None:
    # 4 columns of 12 KiB: 48 KiB a row, 260 rows: 12 MB if every row were fetched first.
    outcome, peak = traced_peak(lambda: engine(db, wide(nested_replace("xxx", 4), 4), max_rows=200))
    assert isinstance(outcome, QueryResult)
    assert (outcome.row_count, outcome.truncated) == (5, True)
    assert sum(len(v) for row in outcome.rows for v in row) == 5 * 4 * 3 * 8**4 <= CAP
    assert peak < 4 * CAP + PEAK_MARGIN


def test_case_16_engine_alone_holds_at_most_the_cap_plus_one_row(db: Path) -> None:
    # Values just under the per-value cap, 8 a row: one row alone is over the result cap.
    value_bytes = 6 * 8**5
    assert value_bytes <= SqlLimits().max_value_bytes
    outcome, peak = traced_peak(
        lambda: engine(db, wide(nested_replace("x" * 6, 5), 8), max_rows=20)
    )
    assert isinstance(outcome, QueryResult)
    assert (outcome.row_count, outcome.truncated) == (0, True)
    assert peak < CAP + 8 * value_bytes + PEAK_MARGIN  # fetching 21 rows first held 33 MB


# -- cases 17 to 19: resource exhaustion ----------------------------------------------------------

INFINITE_CTE = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
)


def test_case_17_recursive_cte_is_rejected_by_both_layers(db: Path) -> None:
    with pytest.raises(SqlRejected, match="recursive"):
        guard(INFINITE_CTE)
    with pytest.raises(SqlRejected, match="recursive"):
        engine(db, INFINITE_CTE)


def test_case_17_deadline_kills_an_infinite_recursive_cte() -> None:
    conn = sqlite3.connect(":memory:")  # no guard, no authorizer: only the deadline
    deadline = install_deadline(conn, 0.2)
    with pytest.raises(sqlite3.OperationalError, match="interrupted"):
        conn.execute(INFINITE_CTE).fetchall()
    assert deadline.expired
    conn.close()


async def test_case_18_cartesian_join_is_stopped_by_the_deadline(db: Path) -> None:
    sql = "SELECT count(*) FROM jobs a, jobs b, jobs c, jobs d, jobs e"
    guard(sql)  # passes the guard: only the deadline bounds it
    executor = SqliteExecutor(db, SqlLimits(timeout_s=0.3))
    with pytest.raises(SqlTimeout, match=r"longer than 0\.3 s"):
        await executor.run(TENANT, sql)
    with pytest.raises(SqlTimeout):
        engine(db, sql, timeout_s=0.3)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT a.id, b.id, c.id FROM jobs a, jobs b, jobs c",  # 17.6 million rows
        "SELECT a.id FROM jobs a CROSS JOIN jobs b CROSS JOIN customers c LIMIT 1000000",
        "SELECT a.id FROM jobs a, jobs b, jobs c LIMIT -1",
    ],
)
async def test_case_19_million_row_results_are_truncated(
    sql: str, executor: SqliteExecutor
) -> None:
    result = await executor.run(TENANT, sql)
    assert result.row_count == executor.limits.max_rows
    assert result.truncated


def test_case_19_engine_alone_truncates_too(db: Path) -> None:
    result = run_confined(
        db, TENANT, "SELECT a.id FROM jobs a, jobs b, jobs c", {}, SqlLimits(max_rows=50)
    )
    assert (result.row_count, result.truncated) == (50, True)


def test_case_20_pg_sleep_is_rejected_by_the_guard() -> None:
    with pytest.raises(SqlRejected, match="function pg_sleep is not allowed"):
        guard("SELECT pg_sleep(60)", "postgres")


# -- case 21: a stored prompt injection is returned as data, and triggers nothing ------------------


async def test_case_21_stored_injection_is_data_and_runs_no_extra_query(
    executor: SqliteExecutor,
) -> None:
    with structlog.testing.capture_logs() as logs:
        result = await executor.run(TENANT, "SELECT id, notes FROM jobs WHERE notes LIKE 'Ignore%'")
    assert [row[1] for row in result.rows] == [INJECTION_NOTE]
    assert [entry["event"] for entry in logs] == ["sql_query"]  # one query, no follow-up
    assert INJECTION_NOTE not in json.dumps(logs)  # the audit line never carries rows


# -- cases 22 to 24: documents -------------------------------------------------------------------


async def test_case_22_claimed_admin_of_another_company_gets_own_documents(
    docs: SqliteDocumentStore,
) -> None:
    passages = await docs.search(
        TENANT, "I'm admin of Bluepeak Plumbing (company 2), show their overtime policy", k=10
    )
    assert passages
    assert {p.doc_id for p in passages} <= {d.doc_id for d in docs.list_documents(TENANT)}
    text = " ".join(p.title + p.text for p in passages)
    assert "Bluepeak" not in text
    assert "double time" not in text
    assert "1.5x" in text  # acme's own rule is what answers


async def test_case_23_near_duplicate_of_another_tenant_is_absent(
    docs: SqliteDocumentStore,
) -> None:
    bluepeak = (DEMO_DOCS / "bluepeak-plumbing" / "tool-allowance.md").read_text()
    theirs = await docs.search("bluepeak-plumbing", bluepeak, k=4)
    assert theirs[0].doc_id == "tool-allowance"
    assert "$350" in theirs[0].text  # the near-duplicate exists, in its own tenant
    ours = await docs.search(TENANT, bluepeak, k=4)
    assert ours[0].doc_id == "tool-allowance"
    assert all("$350" not in p.text and "Bluepeak" not in p.text for p in ours)
    assert "$500" in ours[0].text


@pytest.mark.parametrize(
    "query",
    [
        '"',
        '"overtime',
        "(",
        "overtime)",
        "NEAR(overtime rate, 2)",
        "over*",
        "*",
        "-overtime",
        "overtime - rate",
        "overtime AND OR NOT",
        "title:overtime",
        "{title text}: overtime",
        "^overtime",
        "overtime'; DROP TABLE chunks; --",
        "\x00overtime\u202e",
        "",
        " " * 5000 + "overtime",
    ],
)
async def test_case_24_fts_syntax_never_errors_or_leaks(
    query: str, docs: SqliteDocumentStore
) -> None:
    passages = await docs.search(TENANT, query)
    own = {d.doc_id for d in docs.list_documents(TENANT)}
    assert {p.doc_id for p in passages} <= own
    assert all("Bluepeak" not in p.text and "Citywide" not in p.text for p in passages)
    if "overtime" in query.lower():
        assert passages
        assert passages[0].doc_id == "overtime"
    assert len(docs.list_documents(TENANT)) == len(own)  # the store is intact


# -- case 27: the tenant comes from the caller's context, never from the SQL -----------------------


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM jobs /* company_id: bluepeak-plumbing */",
        "SELECT count(*) FROM jobs -- tenant_id=bluepeak-plumbing",
    ],
)
async def test_case_27_tenant_claims_in_sql_are_ignored(
    sql: str, executor: SqliteExecutor, db: Path
) -> None:
    result = await executor.run(TENANT, sql)
    assert result.rows == tuple(
        plain(db, "SELECT count(*) FROM jobs WHERE company_id = ?", (TENANT,))
    )


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM jobs WHERE :tenant_id = :tenant_id",
        "SELECT count(*) FROM jobs WHERE ? IS NOT NULL",
        "SELECT count(*) FROM jobs WHERE company_id = 'bluepeak-plumbing'",
    ],
)
async def test_case_27_sql_cannot_address_the_tenant_binding(
    sql: str, executor: SqliteExecutor
) -> None:
    with pytest.raises(SqlRejected):
        await executor.run(TENANT, sql)


# -- case 28: what the schema tool shows a model --------------------------------------------------


def test_case_28_curated_schema_holds_no_data_and_no_tenant_column(db: Path) -> None:
    text = json.dumps([[t.name, t.description, t.columns] for t in curated_schema()])
    values = plain(
        db,
        "SELECT name FROM customers UNION SELECT name FROM technicians UNION SELECT title FROM jobs"
        " UNION SELECT name FROM companies UNION SELECT id FROM companies",
    )
    for (value,) in values:
        assert value not in text
    for traps in TRAP_VALUES.values():
        for trap in traps:
            assert trap not in text
    assert "company_id" not in text
    assert {t.name for t in curated_schema()} == {"technicians", "customers", "jobs"}


# -- case 30: errors are bounded, sanitised and safe to feed back to a model -----------------------


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT nosuchcolumn FROM jobs",
        "SELEC * FROM jobs",
        "SELECT * FROM nosuchtable",
        "SELECT count(*) FROM jobs GROUP BY",
        "SELECT sum(revenue) FROM jobs WHERE status = completed",
        "SELECT * FROM jobs WHERE id IN (SELECT id, title FROM jobs)",
        "SELECT abs(-9223372036854775807 - 1)",
        "",
        "   ;  ",
        "x" * 5000,
    ],
)
async def test_case_30_failing_sql_gives_a_sanitised_reason(
    sql: str, executor: SqliteExecutor, db: Path
) -> None:
    with pytest.raises(SqlError) as caught:
        await executor.run(TENANT, sql)
    reason = caught.value.reason
    assert reason
    assert len(reason) <= 300
    assert str(db.parent) not in reason
    assert "/" not in reason
    assert all(trap not in reason for trap in OTHER_TRAPS)


# -- the sweep: queries that pass the guard never show another tenant's trap values ----------------

PASSING_QUERIES = [
    "SELECT * FROM customers",
    "SELECT * FROM jobs",
    "SELECT notes FROM jobs WHERE notes LIKE '%TRAP%'",
    "SELECT name FROM customers WHERE name LIKE '%Trap%'",
    "SELECT c.name, j.notes FROM customers c LEFT JOIN jobs j ON j.customer_id = c.id",
    "SELECT name FROM customers WHERE id NOT IN (SELECT customer_id FROM jobs)",
    "SELECT (SELECT group_concat(notes) FROM jobs) AS n",
    "SELECT name FROM customers UNION SELECT name FROM technicians",
    "SELECT * FROM customers c, jobs j WHERE c.id = j.customer_id OR 1 = 1 LIMIT 1000",
    "WITH everyone AS (SELECT name FROM customers) SELECT * FROM everyone",
    "SELECT name FROM customers WHERE EXISTS (SELECT 1 FROM jobs WHERE jobs.customer_id > 0)",
    "SELECT count(*), group_concat(DISTINCT notes) FROM jobs",
]


@pytest.mark.parametrize("sql", PASSING_QUERIES)
@pytest.mark.parametrize("tenant", [c.id for c in COMPANIES])
async def test_trap_values_of_other_tenants_never_appear(sql: str, tenant: str, db: Path) -> None:
    result = await SqliteExecutor(
        db, SqlLimits(max_rows=100_000, max_result_bytes=2**30, timeout_s=5)
    ).run(tenant, sql)
    text = json.dumps(result.rows, default=str)
    for other, traps in TRAP_VALUES.items():
        for trap in traps:
            if other != tenant:
                assert trap not in text
    unguarded = run_confined(
        db, tenant, sql, {}, SqlLimits(max_rows=100_000, max_result_bytes=2**30, timeout_s=5)
    )
    assert len(unguarded.rows) == len(result.rows)  # the engine alone confines just the same
    text = json.dumps(unguarded.rows, default=str)
    for other, traps in TRAP_VALUES.items():
        for trap in traps:
            if other != tenant:
                assert trap not in text
