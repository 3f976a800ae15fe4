"""The SQL guard from tables: legitimate queries still work (and give each tenant its own numbers),
anything else is refused with a reason a model can act on."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Literal

import pytest

from agent_service.demo.data import COMPANY_IDS, seed_database
from agent_service.sql.executor import SqliteExecutor, SqlLimits
from agent_service.sql.guard import GuardLimits, SqlRejected, guard_sql

Dialect = Literal["sqlite", "postgres"]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return seed_database(tmp_path_factory.mktemp("guard") / "demo.db").path


def guarded(sql: str, dialect: Dialect = "sqlite", **limits: Any) -> str:
    return guard_sql(
        sql, tenant_id="acme-hvac", dialect=dialect, max_rows=200, limits=GuardLimits(**limits)
    ).rewritten


def truth(db: Path, sql: str, tenant: str) -> list[tuple[Any, ...]]:
    """The expected answer: the same question written by hand with explicit `:c` tenant filters."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, {"c": tenant}).fetchall()
    finally:
        conn.close()


# (model-written SQL, the same question with explicit tenant filters)
LEGITIMATE = [
    pytest.param(
        "SELECT count(*) FROM technicians WHERE status = 'active'",
        "SELECT count(*) FROM technicians WHERE status = 'active' AND company_id = :c",
        id="count",
    ),
    pytest.param(
        "SELECT sum(revenue) FROM jobs WHERE status = 'completed'"
        " AND completed_on >= date('2026-11-15', 'start of month')",
        "SELECT sum(revenue) FROM jobs WHERE status = 'completed' AND company_id = :c"
        " AND completed_on >= '2026-11-01'",
        id="date-function",
    ),
    pytest.param(
        "SELECT t.name, sum(j.revenue) AS total FROM technicians t JOIN jobs j"
        " ON j.technician_id = t.id GROUP BY t.name ORDER BY total DESC, t.name LIMIT 3",
        "SELECT t.name, sum(j.revenue) AS total FROM technicians t JOIN jobs j"
        " ON j.technician_id = t.id WHERE t.company_id = :c AND j.company_id = :c"
        " GROUP BY t.name ORDER BY total DESC, t.name LIMIT 3",
        id="join-group-order",
    ),
    pytest.param(
        "WITH monthly AS (SELECT strftime('%Y-%m', completed_on) AS month, sum(revenue) AS rev"
        " FROM jobs WHERE status = 'completed' GROUP BY month)"
        " SELECT month, rev FROM monthly ORDER BY month",
        "SELECT strftime('%Y-%m', completed_on) AS month, sum(revenue) FROM jobs"
        " WHERE status = 'completed' AND company_id = :c GROUP BY month ORDER BY month",
        id="cte-strftime",
    ),
    pytest.param(
        "SELECT status, count(*) AS n FROM jobs GROUP BY status HAVING count(*) > 2"
        " ORDER BY status",
        "SELECT status, count(*) FROM jobs WHERE company_id = :c GROUP BY status"
        " HAVING count(*) > 2 ORDER BY status",
        id="having",
    ),
    pytest.param(
        "SELECT name FROM customers WHERE id IN"
        " (SELECT customer_id FROM jobs WHERE revenue > 1500) ORDER BY name",
        "SELECT name FROM customers WHERE company_id = :c AND id IN"
        " (SELECT customer_id FROM jobs WHERE revenue > 1500 AND company_id = :c) ORDER BY name",
        id="in-subquery",
    ),
    pytest.param(
        "SELECT segment, CASE WHEN count(*) > 15 THEN 'many' ELSE 'few' END AS size"
        " FROM customers GROUP BY segment ORDER BY segment",
        "SELECT segment, CASE WHEN count(*) > 15 THEN 'many' ELSE 'few' END FROM customers"
        " WHERE company_id = :c GROUP BY segment ORDER BY segment",
        id="case",
    ),
    pytest.param(
        "SELECT count(*) FROM jobs j LEFT JOIN technicians t ON t.id = j.technician_id"
        " WHERE t.id IS NULL",
        "SELECT count(*) FROM jobs WHERE company_id = :c AND technician_id IS NULL",
        id="left-join-null",
    ),
    pytest.param(
        "SELECT title FROM jobs WHERE status = 'scheduled'"
        " UNION SELECT name FROM technicians WHERE status = 'on_leave' ORDER BY 1",
        "SELECT title FROM jobs WHERE status = 'scheduled' AND company_id = :c"
        " UNION SELECT name FROM technicians WHERE status = 'on_leave' AND company_id = :c"
        " ORDER BY 1",
        id="union",
    ),
    pytest.param(
        "SELECT name, rank FROM (SELECT name, row_number() OVER (ORDER BY hourly_rate DESC, id)"
        " AS rank FROM technicians) AS ranked WHERE rank <= 3 ORDER BY rank",
        "SELECT name, row_number() OVER (ORDER BY hourly_rate DESC, id) FROM technicians"
        " WHERE company_id = :c ORDER BY hourly_rate DESC, id LIMIT 3",
        id="window",
    ),
    pytest.param(
        "SELECT c.name FROM customers c WHERE EXISTS"
        " (SELECT 1 FROM jobs j WHERE j.customer_id = c.id AND j.status = 'cancelled')"
        " ORDER BY c.name",
        "SELECT c.name FROM customers c WHERE c.company_id = :c AND EXISTS"
        " (SELECT 1 FROM jobs j WHERE j.customer_id = c.id AND j.status = 'cancelled')"
        " ORDER BY c.name",
        id="correlated-exists",
    ),
    pytest.param(
        "SELECT (SELECT count(*) FROM customers) AS customers,"
        " (SELECT round(avg(hourly_rate), 2) FROM technicians) AS avg_rate",
        "SELECT (SELECT count(*) FROM customers WHERE company_id = :c),"
        " (SELECT round(avg(hourly_rate), 2) FROM technicians WHERE company_id = :c)",
        id="scalar-subqueries",
    ),
    pytest.param(
        "SELECT round(avg(julianday(completed_on) - julianday(scheduled_on)), 3) FROM jobs"
        " WHERE completed_on IS NOT NULL",
        "SELECT round(avg(julianday(completed_on) - julianday(scheduled_on)), 3) FROM jobs"
        " WHERE completed_on IS NOT NULL AND company_id = :c",
        id="julianday",
    ),
    pytest.param(
        "SELECT a.city, count(DISTINCT b.id) FROM customers a JOIN customers b"
        " ON a.city = b.city AND a.id <> b.id GROUP BY a.city ORDER BY a.city",
        "SELECT a.city, count(DISTINCT b.id) FROM customers a JOIN customers b"
        " ON a.city = b.city AND a.id <> b.id WHERE a.company_id = :c AND b.company_id = :c"
        " GROUP BY a.city ORDER BY a.city",
        id="self-join",
    ),
    pytest.param(
        "SELECT lower(name), coalesce(NULL, specialty), length(name) FROM technicians"
        " WHERE name LIKE '%a%' ORDER BY id LIMIT 5 OFFSET 2",
        "SELECT lower(name), specialty, length(name) FROM technicians"
        " WHERE name LIKE '%a%' AND company_id = :c ORDER BY id LIMIT 5 OFFSET 2",
        id="scalar-functions-offset",
    ),
    pytest.param(
        "SELECT * FROM technicians ORDER BY id",
        "SELECT id, name, status, specialty, hired_on, hourly_rate FROM technicians"
        " WHERE company_id = :c ORDER BY id",
        id="star-hides-tenant-column",
    ),
    pytest.param(
        'SELECT "jobs"."title", Jobs.Status FROM JOBS WHERE Id = (SELECT min(id) FROM jobs)',
        "SELECT title, status FROM jobs WHERE company_id = :c ORDER BY id LIMIT 1",
        id="case-and-quoting",
    ),
]


@pytest.mark.parametrize(("sql", "expected_sql"), LEGITIMATE)
@pytest.mark.parametrize("tenant", COMPANY_IDS)
async def test_legitimate_queries_return_the_tenants_own_numbers(
    sql: str, expected_sql: str, tenant: str, db: Path
) -> None:
    result = await SqliteExecutor(db, SqlLimits()).run(tenant, sql)
    expected = truth(db, expected_sql, tenant)
    assert expected  # every case is a question with an answer
    assert [tuple(r) for r in result.rows] == expected
    assert not result.truncated
    assert result.sql == sql


def test_tenants_get_different_answers_to_the_same_question(db: Path) -> None:
    answers = {
        tenant: truth(db, "SELECT sum(revenue) FROM jobs WHERE company_id = :c", tenant)
        for tenant in COMPANY_IDS
    }
    assert len({str(a) for a in answers.values()}) == len(COMPANY_IDS)


REJECTED = [
    ("", "empty"),
    ("   ", "empty"),
    ("SELECT 1; SELECT 2", "exactly one statement"),
    ("SELEC 1", "could not be parsed"),
    ("SELECT (1", "could not be parsed"),
    ("SELECT 'unterminated", "could not be parsed"),
    ("EXPLAIN SELECT 1", "only SELECT"),
    ("SELECT * FROM jobs FOR UPDATE", "locking reads"),
    ("SELECT x FROM jobs", "column x is not available"),
    ('SELECT id FROM jobs WHERE status = "completed"', "write text values in single quotes"),
    ("SELECT j.name FROM jobs j", "column name is not available in table jobs"),
    ("SELECT company_id FROM jobs", "company_id is not available"),
    ("SELECT j.company_id FROM jobs j", "company_id is not available"),
    ("SELECT count(*) FROM jobs GROUP BY company_id", "company_id is not available"),
    ("SELECT * FROM jobs WHERE id = ?", "parameters are not allowed"),
    ("SELECT * FROM jobs WHERE id = :id", "parameters are not allowed"),
    ("SELECT random()", "function random is not allowed"),
    ("SELECT hex(name) FROM customers", "function hex is not allowed"),
    ("SELECT unknown_fn(1)", "function unknown_fn is not allowed"),
    ("WITH customers AS (SELECT 1) SELECT * FROM customers", "may not be named like the table"),
    ("WITH sqlite_master AS (SELECT 1) SELECT * FROM sqlite_master", "may not be named"),
    (
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 5)"
        " SELECT x FROM n",
        "recursive",
    ),
    ("SELECT * FROM jobs INDEXED BY jobs_company_id", "unsupported table syntax"),
    # issue 13: names by scope, SQLite's `IN table`, unknown qualifiers, bad bytes, deep nesting
    ("SELECT 1 AS customers WHERE 'x' IN main.customers", "IN takes"),
    ("SELECT count(*) FROM jobs WHERE 'x' IN customers", "IN takes"),
    ("SELECT main.customers.name FROM customers", "schema-qualified"),
    ("SELECT nowhere.name FROM customers", "nowhere.name names no table"),
    ("SELECT * FROM x WHERE EXISTS (WITH x AS (SELECT 1 AS v) SELECT v FROM x)", "table x"),
    ("WITH b AS (SELECT * FROM a), a AS (SELECT name FROM customers) SELECT * FROM b", "table a"),
    ("SELECT * FROM (WITH x AS (SELECT 1 AS v) SELECT v FROM x) s, x", "table x"),
    ("SELECT name FROM customers WHERE name = '\x00'", "NUL or unpaired surrogate"),
    ("SELECT name FROM customers WHERE name = '\ud800'", "NUL or unpaired surrogate"),
    ("SELECT " + "(" * 1500 + "1" + ")" * 1500, "nested too deeply"),
    ("SELECT " + "CASE WHEN 1 THEN " * 150 + "1" + " END" * 150, "nested too deeply"),
]


@pytest.mark.parametrize(("sql", "reason"), REJECTED)
def test_rejections_carry_a_reason(sql: str, reason: str) -> None:
    with pytest.raises(SqlRejected) as caught:
        guarded(sql)
    assert reason in caught.value.reason


def doubling_chain(levels: int) -> str:
    chain = [f"a{i} AS (SELECT t || t AS t FROM a{i - 1})" for i in range(1, levels + 1)]
    return f"WITH a0 AS (SELECT 'x' AS t), {', '.join(chain)} SELECT t FROM a{levels}"


def test_the_expanded_size_is_bounded_whatever_the_text_length() -> None:
    guarded(doubling_chain(8))  # 2^8 copies: fine
    with pytest.raises(SqlRejected, match="grows too large once its WITH queries"):
        guarded(doubling_chain(10))
    with pytest.raises(SqlRejected, match="grows too large"):
        guarded(doubling_chain(6), max_expanded_nodes=1000)
    # derived tables inline the same way: 40 copies a level, 4 levels
    wide = " || ".join(["t"] * 40)
    derived = "SELECT 'x' AS t"
    for _ in range(4):
        derived = f"SELECT {wide} AS t FROM ({derived}) d"
    with pytest.raises(SqlRejected, match="grows too large"):
        guarded(derived)
    # a CTE read once, or many columns named once each, are not multiplied
    guarded(
        "WITH m AS (SELECT status, count(*) AS n, sum(revenue) AS r FROM jobs GROUP BY status),"
        " s AS (SELECT status, n, r, r / n AS avg FROM m) SELECT status, n, r, avg FROM s"
    )


def test_caps_on_length_joins_and_nesting() -> None:
    with pytest.raises(SqlRejected, match="longer than 50 characters"):
        guarded("SELECT id FROM jobs WHERE title = '" + "x" * 50 + "'", max_sql_chars=50)
    joins = "SELECT count(*) FROM jobs a" + "".join(f" JOIN jobs j{i} ON 1=1" for i in range(3))
    guarded(joins, max_joins=3)
    with pytest.raises(SqlRejected, match="at most 2 joins"):
        guarded(joins, max_joins=2)
    with pytest.raises(SqlRejected, match="at most 2 joins"):
        guarded("SELECT count(*) FROM jobs a, jobs b, jobs c, jobs d", max_joins=2)
    nested = "SELECT (SELECT (SELECT (SELECT count(*) FROM jobs)))"
    guarded(nested, max_nesting=3)
    with pytest.raises(SqlRejected, match="nested at most 2 deep"):
        guarded(nested, max_nesting=2)


def test_rewrite_binds_the_tenant_and_never_inlines_it() -> None:
    query = guard_sql(
        "SELECT name FROM customers c JOIN jobs ON jobs.customer_id = c.id",
        tenant_id="bluepeak-plumbing",
        dialect="sqlite",
        max_rows=10,
        limits=GuardLimits(),
    )
    assert "bluepeak" not in query.rewritten
    assert query.rewritten.count(":tenant_id") == 2
    assert dict(query.params) == {"tenant_id": "bluepeak-plumbing"}
    assert query.tables == ("customers", "jobs")
    assert query.rewritten.endswith("LIMIT 11")
    assert "bluepeak" not in repr(query)  # params stay out of logs that print the query


def test_postgres_dialect_uses_the_same_design() -> None:
    query = guard_sql(
        "SELECT date_trunc('month', scheduled_on::date) AS m, count(*) FROM jobs GROUP BY 1",
        tenant_id="acme-hvac",
        dialect="postgres",
        max_rows=5,
        limits=GuardLimits(),
    )
    assert "%(tenant_id)s" in query.rewritten
    assert query.rewritten.endswith("LIMIT 6")
    with pytest.raises(SqlRejected, match="table Jobs is not available"):
        guarded('SELECT * FROM "Jobs"', "postgres")  # quoted names keep their case in Postgres
    assert "FROM jobs" in guarded('SELECT * FROM "Jobs"', "sqlite")


@pytest.mark.parametrize(
    ("sql", "suffix"),
    [
        ("SELECT id FROM jobs", "LIMIT 201"),
        ("SELECT id FROM jobs LIMIT 5", "LIMIT 5"),
        ("SELECT id FROM jobs LIMIT 5000", "AS limited_result LIMIT 201"),
        ("SELECT id FROM jobs LIMIT 10 OFFSET 5", "LIMIT 10 OFFSET 5"),
        ("SELECT id FROM jobs LIMIT -1", "AS limited_result LIMIT 201"),
        ("SELECT id FROM jobs UNION SELECT id FROM customers", "LIMIT 201"),
    ],
)
def test_outer_limit_is_capped(sql: str, suffix: str) -> None:
    assert guarded(sql).endswith(suffix)


@pytest.mark.parametrize("bad", ["", "../etc", "a b", "x'--", "é", "a" * 129])
def test_a_malformed_tenant_is_a_programming_error(bad: str) -> None:
    with pytest.raises(ValueError, match="tenant_id"):
        guard_sql("SELECT 1", tenant_id=bad, dialect="sqlite", max_rows=1, limits=GuardLimits())
