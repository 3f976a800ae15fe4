"""The SQLite executor's own contract: caps, error mapping, the audit line, the limits object."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import structlog.testing

from agent_service.demo.data import seed_database
from agent_service.sql.budget import MAX_FETCH_BATCH, ResultBudget, value_size
from agent_service.sql.executor import (
    SqlExecutionError,
    SqliteExecutor,
    SqlLimits,
    SqlRejected,
    SqlTimeout,
    run_confined,
)
from agent_service.sql.guard import SqlError

TENANT = "citywide-electric"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return seed_database(tmp_path_factory.mktemp("executor") / "demo.db").path


async def test_result_keeps_the_original_sql_and_column_names(db: Path) -> None:
    sql = "SELECT name AS technician, hourly_rate FROM technicians ORDER BY id LIMIT 2"
    result = await SqliteExecutor(db).run(TENANT, sql)
    assert result.sql == sql
    assert result.columns == ("technician", "hourly_rate")
    assert result.row_count == 2
    assert not result.truncated


async def test_row_cap_sets_truncated(db: Path) -> None:
    executor = SqliteExecutor(db, SqlLimits(max_rows=7))
    result = await executor.run(TENANT, "SELECT id FROM jobs")
    assert (result.row_count, result.truncated) == (7, True)
    exact = await executor.run(TENANT, "SELECT id FROM technicians LIMIT 7")
    assert (exact.row_count, exact.truncated) == (7, False)


async def test_byte_cap_truncates_wide_results(db: Path) -> None:
    executor = SqliteExecutor(db, SqlLimits(max_rows=1000, max_result_bytes=2000))
    result = await executor.run(TENANT, "SELECT title, notes FROM jobs")
    assert result.truncated
    assert 0 < result.row_count < 1000
    size = sum(len(v.encode()) for row in result.rows for v in row)
    assert size <= 2000


async def test_timeout_is_reported_as_such(db: Path) -> None:
    executor = SqliteExecutor(db, SqlLimits(timeout_s=0.2))
    with pytest.raises(SqlTimeout) as caught:
        await executor.run(TENANT, "SELECT count(*) FROM jobs a, jobs b, jobs c, jobs d")
    assert "stopped" in caught.value.reason
    # The executor is not poisoned by a timeout: the next query runs normally.
    assert (await executor.run(TENANT, "SELECT 1")).rows == ((1,),)


async def test_missing_database_is_a_clean_error_without_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "secret-location" / "nope.db"
    with pytest.raises(SqlExecutionError) as caught:
        await SqliteExecutor(missing).run(TENANT, "SELECT 1")
    assert "secret-location" not in caught.value.reason
    assert not missing.exists()


async def test_engine_errors_are_sanitised(db: Path) -> None:
    with pytest.raises(SqlExecutionError) as caught:
        await SqliteExecutor(db).run(
            TENANT, "SELECT * FROM jobs WHERE id IN (SELECT id, title FROM jobs)"
        )
    assert caught.value.reason.startswith("the database could not run the query")
    assert str(db.parent) not in caught.value.reason


def test_engine_rejections_name_what_was_refused(db: Path) -> None:
    with pytest.raises(SqlRejected, match="table sqlite_master is not available"):
        run_confined(db, TENANT, "SELECT * FROM sqlite_master", {}, SqlLimits())
    with pytest.raises(SqlRejected, match="function randomblob is not allowed"):
        run_confined(db, TENANT, "SELECT randomblob(4)", {}, SqlLimits())
    with pytest.raises(SqlRejected, match="only SELECT"):
        run_confined(db, TENANT, "PRAGMA table_info(jobs)", {}, SqlLimits())


def test_engine_step_refuses_a_malformed_tenant(db: Path) -> None:
    with pytest.raises(ValueError, match="tenant_id"):
        run_confined(db, "x' OR '1'='1", "SELECT 1", {}, SqlLimits())


async def test_audit_line_per_query_never_carries_rows(db: Path) -> None:
    conn = sqlite3.connect(db)
    names = [
        r[0] for r in conn.execute("SELECT name FROM customers WHERE company_id = ?", [TENANT])
    ]
    conn.close()
    executor = SqliteExecutor(db)
    with structlog.testing.capture_logs() as logs:
        await executor.run(TENANT, "SELECT name FROM customers")
        with pytest.raises(SqlRejected):
            await executor.run(TENANT, "DELETE FROM jobs")
    ok, rejected = logs
    assert ok["event"] == "sql_query"
    assert (ok["tenant"], ok["verdict"], ok["rows"]) == (TENANT, "ok", len(names))
    assert isinstance(ok["duration_ms"], float)
    assert '"company_id" = :tenant_id' in ok["executed"]  # the guarded rewrite is what ran
    assert rejected["verdict"] == "rejected"
    assert rejected["reason"] == "only SELECT statements are allowed"
    assert not any(name in str(logs) for name in names)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_rows": 0},
        {"max_result_bytes": 0},
        {"timeout_s": 0},
        {"timeout_s": -1.0},
        {"max_sql_chars": 0},
        {"max_joins": -1},
        {"max_value_bytes": 10},
        {"max_string_nesting": 0},
    ],
)
def test_limits_refuse_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        SqlLimits(**kwargs)  # type: ignore[arg-type]


async def test_every_failure_is_one_error_family(db: Path) -> None:
    executor = SqliteExecutor(db, SqlLimits(timeout_s=0.2))
    for sql in (
        "DROP TABLE jobs",
        "SELECT nope FROM jobs",
        "SELECT count(*) FROM jobs a, jobs b, jobs c, jobs d",
    ):
        with pytest.raises(SqlError):
            await executor.run(TENANT, sql)


def test_budget_keeps_rows_until_the_byte_cap_and_says_it_truncated() -> None:
    budget = ResultBudget(max_rows=10, max_result_bytes=100)
    assert budget.add(("a" * 40,))
    assert budget.add(("b" * 40,))
    assert not budget.add(("c" * 40,))  # 120 > 100: refused, fetching stops
    assert (budget.rows, budget.size, budget.truncated) == ((("a" * 40,), ("b" * 40,)), 80, True)
    assert not budget.add(("d",))  # nothing is kept after the first refusal
    assert len(budget.rows) == 2


def test_budget_row_cap_needs_one_extra_row_to_truncate() -> None:
    budget = ResultBudget(max_rows=2, max_result_bytes=1000)
    assert budget.add((1,)) and budget.add((2,))
    before = budget.truncated  # exactly max_rows rows so far: maybe that is all
    assert not budget.add((3,))
    assert (before, budget.truncated, budget.rows) == (False, True, ((1,), (2,)))


@pytest.mark.parametrize(
    ("rows_kept", "row_bytes", "expected"),
    [
        (0, 0, 1),  # nothing known yet: one row first
        (1, 10, MAX_FETCH_BATCH),  # small rows: a full batch
        (1, 300, 2),  # room for two more rows of the largest size seen
        (1, 900, 1),  # no room: still one, to learn whether the result was truncated
        (99, 1, 2),  # the rows left up to max_rows + 1
    ],
)
def test_budget_sizes_the_next_batch(rows_kept: int, row_bytes: int, expected: int) -> None:
    budget = ResultBudget(max_rows=100, max_result_bytes=1000)
    for _ in range(rows_kept):
        budget.add(("x" * row_bytes,))
    assert budget.next_batch() == expected


def test_value_size_counts_utf8_bytes() -> None:
    assert [value_size(v) for v in ("abc", "é", b"\x00\x01", 12, None)] == [3, 2, 2, 8, 8]
