"""Question shapes from a table: the offline provider's SQL, run through the real tenant-enforcing
executor, must give each company exactly what a hand-written query with an explicit tenant filter
gives, and the companies must not all get the same answer."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from agent_service.demo.data import seed_database
from agent_service.providers.base import AskContext, QueryResult, SqlDraft, UsageMeter
from agent_service.providers.offline.provider import OfflineProvider
from agent_service.sql.executor import SqliteExecutor
from agent_service.sql.schema import curated_schema

TENANTS = ("acme-hvac", "bluepeak-plumbing", "citywide-electric")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return seed_database(tmp_path_factory.mktemp("offline-sql") / "demo.db").path


def ask(question: str, memory: dict[str, Any] | None = None) -> AskContext:
    return AskContext(question=question, history=(), memory=memory or {}, usage=UsageMeter())


def truth(db: Path, sql: str, tenant: str) -> list[tuple[Any, ...]]:
    """The expected answer: the same question written by hand with explicit `:c` tenant filters."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, {"c": tenant}).fetchall()
    finally:
        conn.close()


async def draft(question: str, memory: dict[str, Any] | None = None) -> SqlDraft:
    result = await OfflineProvider().draft_sql(ask(question, memory), curated_schema(), ())
    assert isinstance(result, SqlDraft), result
    return result


def scalar(result: QueryResult) -> list[tuple[Any, ...]]:
    return [result.rows[0][:1]]


def ids(result: QueryResult) -> list[tuple[Any, ...]]:
    return sorted((row[0],) for row in result.rows)


def in_order(result: QueryResult) -> list[tuple[Any, ...]]:
    return [(row[0],) for row in result.rows]


def rows(result: QueryResult) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in result.rows]


C = "company_id = :c"
JOBS_C = f"j.{C} AND c.{C}"
# (question, hand-written truth, how to compare)
SHAPES = [
    ("How many technicians are active?",
     f"SELECT count(*) FROM technicians WHERE status = 'active' AND {C}", scalar),
    ("How many technicians are on leave?",
     f"SELECT count(*) FROM technicians WHERE status = 'on_leave' AND {C}", scalar),
    ("How many technicians do we have?", f"SELECT count(*) FROM technicians WHERE {C}", scalar),
    ("List inactive technicians",
     f"SELECT id FROM technicians WHERE status = 'inactive' AND {C}", ids),
    ("Who are our active technicians?",
     f"SELECT id FROM technicians WHERE status = 'active' AND {C}", ids),
    ("How many lighting technicians do we have?",
     f"SELECT count(*) FROM technicians WHERE specialty LIKE '%lighting%' AND {C}", scalar),
    ("Technicians by status",
     f"SELECT status, count(*) AS n FROM technicians WHERE {C} GROUP BY status"
     " ORDER BY n DESC, status", rows),
    ("Technicians by specialty",
     f"SELECT specialty, count(*) AS n FROM technicians WHERE {C} GROUP BY specialty"
     " ORDER BY n DESC, specialty", rows),
    ("What is the average hourly rate?",
     f"SELECT round(avg(hourly_rate), 2) FROM technicians WHERE {C}", scalar),
    ("Who are our 3 newest hires?",
     f"SELECT id FROM technicians WHERE {C} ORDER BY hired_on DESC LIMIT 3", in_order),
    ("Who is the highest paid technician?",
     f"SELECT id FROM technicians WHERE {C} ORDER BY hourly_rate DESC LIMIT 1", in_order),
    ("Technicians hired in 2019",
     f"SELECT id FROM technicians WHERE hired_on LIKE '2019-%' AND {C}", ids),
    ("How many customers do we have?", f"SELECT count(*) FROM customers WHERE {C}", scalar),
    ("How many commercial customers do we have?",
     f"SELECT count(*) FROM customers WHERE segment = 'commercial' AND {C}", scalar),
    ("List residential customers",
     f"SELECT id FROM customers WHERE segment = 'residential' AND {C}", ids),
    ("Customers by city",
     f"SELECT city, count(*) AS n FROM customers WHERE {C} GROUP BY city ORDER BY n DESC, city",
     rows),
    ("How many jobs are there?", f"SELECT count(*) FROM jobs WHERE {C}", scalar),
    ("How many jobs were completed in October?",
     f"SELECT count(*) FROM jobs WHERE status = 'completed' AND completed_on LIKE '2026-10-%'"
     f" AND {C}", scalar),
    ("List completed jobs in October",
     f"SELECT id FROM jobs WHERE status = 'completed' AND completed_on LIKE '2026-10-%' AND {C}",
     ids),
    ("How many jobs were cancelled this year?",
     f"SELECT count(*) FROM jobs WHERE status = 'cancelled' AND scheduled_on LIKE '2026-%'"
     f" AND {C}", scalar),
    ("How many jobs are scheduled this month?",
     f"SELECT count(*) FROM jobs WHERE scheduled_on LIKE '2026-11-%' AND {C}", scalar),
    ("How many jobs did we have last month?",
     f"SELECT count(*) FROM jobs WHERE scheduled_on LIKE '2026-10-%' AND {C}", scalar),
    ("How many jobs in the last 30 days?",
     f"SELECT count(*) FROM jobs WHERE scheduled_on BETWEEN '2026-10-17' AND '2026-11-15'"
     f" AND {C}", scalar),
    ("How many jobs are open?",
     f"SELECT count(*) FROM jobs WHERE status IN ('scheduled', 'in_progress') AND {C}", scalar),
    ("How many jobs are overdue?",
     f"SELECT count(*) FROM jobs WHERE status IN ('scheduled', 'in_progress')"
     f" AND scheduled_on < '2026-11-15' AND {C}", scalar),
    ("Jobs by status",
     f"SELECT status, count(*) AS n FROM jobs WHERE {C} GROUP BY status ORDER BY n DESC, status",
     rows),
    ("How many jobs for commercial customers this year?",
     "SELECT count(*) FROM jobs j JOIN customers c ON c.id = j.customer_id"
     f" WHERE c.segment = 'commercial' AND j.scheduled_on LIKE '2026-%' AND {JOBS_C}", scalar),
    ("What was our revenue in October?",
     f"SELECT round(coalesce(sum(revenue), 0), 2) FROM jobs WHERE status = 'completed'"
     f" AND completed_on LIKE '2026-10-%' AND {C}", scalar),
    ("Total revenue this year",
     f"SELECT round(coalesce(sum(revenue), 0), 2) FROM jobs WHERE status = 'completed'"
     f" AND completed_on BETWEEN '2026-01-01' AND '2026-11-15' AND {C}", scalar),
    ("Average revenue per job last month",
     f"SELECT round(avg(revenue), 2) FROM jobs WHERE status = 'completed'"
     f" AND completed_on LIKE '2026-10-%' AND {C}", scalar),
    ("Revenue by month",
     "SELECT substr(completed_on, 1, 7) AS m, round(sum(revenue), 2) FROM jobs"
     f" WHERE status = 'completed' AND {C} GROUP BY m ORDER BY m", rows),
    ("Revenue by segment this year",
     "SELECT c.segment, round(sum(j.revenue), 2) AS r FROM jobs j"
     " JOIN customers c ON c.id = j.customer_id WHERE j.status = 'completed'"
     f" AND j.completed_on LIKE '2026-%' AND {JOBS_C} GROUP BY c.segment ORDER BY r DESC",
     rows),
    ("Top 5 technicians by revenue this year",
     "SELECT t.id, t.name, round(sum(j.revenue), 2) AS r FROM jobs j"
     " JOIN technicians t ON t.id = j.technician_id WHERE j.status = 'completed'"
     f" AND j.completed_on LIKE '2026-%' AND j.{C} AND t.{C}"
     " GROUP BY t.id ORDER BY r DESC, t.id LIMIT 5", rows),
    ("Top 3 technicians by completed jobs",
     "SELECT t.id, t.name, count(*) AS n FROM jobs j JOIN technicians t"
     f" ON t.id = j.technician_id WHERE j.status = 'completed' AND j.{C} AND t.{C}"
     " GROUP BY t.id ORDER BY n DESC, t.id LIMIT 3", rows),
    ("Who are our top customers?",
     "SELECT c.id, c.name, round(sum(j.revenue), 2) AS r FROM jobs j JOIN customers c"
     f" ON c.id = j.customer_id WHERE j.status = 'completed' AND {JOBS_C}"
     " GROUP BY c.id ORDER BY r DESC, c.id LIMIT 5", rows),
    ("Who was the busiest technician last month?",
     "SELECT t.id, t.name, count(*) AS n FROM jobs j JOIN technicians t"
     f" ON t.id = j.technician_id WHERE j.scheduled_on LIKE '2026-10-%' AND j.{C} AND t.{C}"
     " GROUP BY t.id ORDER BY n DESC, t.id LIMIT 1", rows),
    ("Which technicians had no jobs last month?",
     f"SELECT id FROM technicians WHERE {C} AND id NOT IN (SELECT technician_id FROM jobs"
     f" WHERE technician_id IS NOT NULL AND scheduled_on LIKE '2026-10-%' AND {C})", ids),
    ("How many unassigned jobs are there?",
     f"SELECT count(*) FROM jobs WHERE technician_id IS NULL AND {C}", scalar),
    ("What is our cancellation rate this year?",
     "SELECT round(100.0 * sum(status = 'cancelled') / count(*), 1) FROM jobs"
     f" WHERE scheduled_on BETWEEN '2026-01-01' AND '2026-11-15' AND {C}", scalar),
    ("How long do jobs take to complete on average?",
     "SELECT round(avg(julianday(completed_on) - julianday(scheduled_on)), 1) FROM jobs"
     f" WHERE status = 'completed' AND {C}", scalar),
]  # fmt: skip


# The seeded data happens to give every company the same count here; the per-tenant truth above
# still catches a leak (a leaked count would be the sum over companies).
SAME_IN_EVERY_COMPANY = frozenset({"How many jobs are open?", "How many jobs are overdue?"})


@pytest.mark.parametrize(("question", "truth_sql", "shape"), SHAPES, ids=[s[0] for s in SHAPES])
async def test_each_shape_answers_exactly_per_tenant(
    db: Path, question: str, truth_sql: str, shape: Any
) -> None:
    executor = SqliteExecutor(db)
    drafted = await draft(question)
    assert drafted.note.strip(), "every query explains itself on the sql_agent channel"
    assert "company_id" not in drafted.sql.lower()
    answers = []
    for tenant in TENANTS:
        result = await executor.run(tenant, drafted.sql)
        got = shape(result)
        assert got == truth(db, truth_sql, tenant), (tenant, drafted.sql)
        answers.append(got)
    if question not in SAME_IN_EVERY_COMPANY:
        distinct = {repr(answer) for answer in answers}
        assert len(distinct) > 1, "companies should see different numbers"


async def test_a_name_from_the_question_is_matched_as_a_literal(db: Path) -> None:
    executor = SqliteExecutor(db)
    name = truth(db, "SELECT name FROM technicians WHERE company_id = :c LIMIT 1", "acme-hvac")[0][
        0
    ]
    drafted = await draft(f"How many jobs did {name} complete this year?")
    result = await executor.run("acme-hvac", drafted.sql)
    expected = truth(
        db,
        "SELECT count(*) FROM jobs j JOIN technicians t ON t.id = j.technician_id"
        " WHERE j.company_id = :c AND j.status = 'completed' AND j.completed_on LIKE '2026-%'"
        f" AND t.name = '{name}'",
        "acme-hvac",
    )
    assert result.rows[0][0] == expected[0][0] > 0
    # The same name asked by another company finds nothing: names never cross tenants.
    other = await executor.run("citywide-electric", drafted.sql)
    assert other.rows[0][0] == 0


@pytest.mark.parametrize(
    "name",
    ["O'Brien", "Robert'); DROP TABLE jobs; --", "100% Plumbing", "under_score", 'Quote " Inc'],
)
async def test_hostile_names_stay_inside_one_string_literal(db: Path, name: str) -> None:
    drafted = await draft(f'List jobs for customer "{name}"')
    result = await SqliteExecutor(db).run("acme-hvac", drafted.sql)
    assert result.rows == ()
    assert truth(db, "SELECT count(*) FROM jobs WHERE company_id = :c", "acme-hvac")[0][0] > 0


async def test_trap_customer_of_another_tenant_is_never_found(db: Path) -> None:
    drafted = await draft('Tell me about "Citywide Trap Holdings"')
    result = await SqliteExecutor(db).run("acme-hvac", drafted.sql)
    assert result.rows == ()
