"""Answers a person can trust, kind by kind: trades, every-status counts, lower-case names and
cities, "their" rate, bare-month comparisons, shares of revenue, and replies that never state a
second, rival number. Phrasings are written here, not taken from the eval; numbers are checked
against SQL written here, independently of the provider.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from agent_service.demo.data import seed_database
from agent_service.providers.base import AskContext, SqlDraft, UsageMeter
from agent_service.providers.offline.provider import OfflineProvider
from agent_service.sql.executor import SqliteExecutor
from agent_service.sql.schema import curated_schema

ACME, BLUEPEAK, CITYWIDE = "acme-hvac", "bluepeak-plumbing", "citywide-electric"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return seed_database(tmp_path_factory.mktemp("offline-trust") / "demo.db").path


def truth(db: Path, tenant: str, sql: str) -> Any:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, {"c": tenant}).fetchone()[0]
    finally:
        conn.close()


async def converse(db: Path, tenant: str, *questions: str) -> tuple[str, str]:
    """(route, answer) of the last question, after the earlier ones in the same conversation."""
    provider = OfflineProvider()
    memory: dict[str, Any] = {}
    route, text = "", ""
    for question in questions:
        ask = AskContext(question, (), dict(memory), UsageMeter())
        route = (await provider.classify(ask)).route
        text = ""
        if route == "sql":
            draft = await provider.draft_sql(ask, curated_schema(), ())
            if isinstance(draft, SqlDraft):
                result = await SqliteExecutor(db).run(tenant, draft.sql)
                memory["provider"] = {**memory.get("provider", {}), **draft.memory}
                memory["last_result"] = {
                    "columns": list(result.columns),
                    "rows": [list(r) for r in result.rows[:20]],
                }
                text = "".join([t async for t in provider.answer_from_rows(ask, result)])
            else:
                text = "".join([t async for t in provider.answer_plainly(ask, draft.message)])
        elif route == "general":
            text = "".join([t async for t in provider.answer_generally(ask)])
        memory["last_route"] = route
    return route, text


def counts(text: str) -> list[int]:
    """Plain whole numbers stated in an answer (not money, dates or job numbers)."""
    cleaned = re.sub(r"\$[\d,.]+|#\d+|\b\w+ \d{1,2}, \d{4}\b|\b\d{4}\b", " ", text)
    return [int(n.replace(",", "")) for n in re.findall(r"(?<![\w.])\d[\d,]*(?![\w.%])", cleaned)]


ACTIVE = "SELECT count(*) FROM technicians WHERE company_id = :c AND status = 'active'"
ALL = "SELECT count(*) FROM technicians WHERE company_id = :c"

# A trade noun in a company of that trade means its technicians; the number is the true one.
TRADES = [
    (BLUEPEAK, ACTIVE, "how many active plumbers have we got"),
    (BLUEPEAK, ACTIVE, "number of plumbers that are active?"),
    (CITYWIDE, ACTIVE, "active electricians, how many"),
    (CITYWIDE, ALL, "how many electricians do we employ"),
]


@pytest.mark.parametrize(("tenant", "sql", "question"), TRADES)
async def test_a_trade_noun_counts_that_trades_technicians(
    db: Path, tenant: str, sql: str, question: str
) -> None:
    route, text = await converse(db, tenant, question)
    assert route == "sql"
    assert counts(text) == [truth(db, tenant, sql)], text


async def test_a_trade_the_company_does_not_have_is_none(db: Path) -> None:
    _, text = await converse(db, ACME, "how many plumbers are active")
    assert "no active technicians specializing in plumbing" in text


# Everyone, whatever their status: never a count of one status in its place.
EVERY_STATUS = [
    "how many techs in total, counting the ones on leave",
    "technician headcount including inactive",
    "how many technicians are on the payroll",
    "count all technicians regardless of status",
]


@pytest.mark.parametrize("question", EVERY_STATUS)
async def test_every_status_counts_everyone(db: Path, question: str) -> None:
    _, text = await converse(db, ACME, question)
    assert counts(text) == [truth(db, ACME, ALL)], text


@pytest.mark.parametrize(
    "question",
    ["how many techs are working, not on leave", "techs currently working (excluding inactive)"],
)
async def test_statuses_ruled_out_only_restate_active(db: Path, question: str) -> None:
    _, text = await converse(db, ACME, question)
    assert counts(text) == [truth(db, ACME, ACTIVE)], text


async def test_everyone_in_a_follow_up_drops_the_status(db: Path) -> None:
    _, text = await converse(db, BLUEPEAK, "how many plumbers are on leave", "and altogether?")
    assert counts(text) == [truth(db, BLUEPEAK, ALL)], text


@pytest.mark.parametrize("question", ["who is on leave right now?", "whos on leave"])
async def test_on_leave_alone_means_technicians(db: Path, question: str) -> None:
    _, text = await converse(db, ACME, question)
    conn = sqlite3.connect(db)
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM technicians WHERE company_id = ? AND status = 'on_leave'", (ACME,)
        )
    ]
    conn.close()
    assert names and all(name in text for name in names), text


RATE = "SELECT hourly_rate FROM technicians WHERE company_id = :c AND name = '{}'"


@pytest.mark.parametrize(
    "question",
    [
        "what does victor chen earn per hour",
        "victor chen hourly rate?",
        "how much is victor chen paid an hour",
        "Victor Chen's rate",
    ],
)
async def test_a_name_in_lower_case_is_still_found(db: Path, question: str) -> None:
    route, text = await converse(db, ACME, question)
    assert route == "sql"
    assert f"${truth(db, ACME, RATE.format('Victor Chen')):,.2f}" in text, text


@pytest.mark.parametrize(
    ("question", "city"),
    [("number of customers in lakewood", "Lakewood"), ("how many clients near denver?", "Denver")],
)
async def test_a_city_in_lower_case_is_still_found(db: Path, question: str, city: str) -> None:
    sql = f"SELECT count(*) FROM customers WHERE company_id = :c AND city = '{city}'"
    _, text = await converse(db, ACME, question)
    assert counts(text) == [truth(db, ACME, sql)], text


@pytest.mark.parametrize(
    "question",
    ["how many jobs mention permit inspections", "jobs with warranty claims this year"],
)
async def test_unknown_words_that_are_no_name_are_named_back(db: Path, question: str) -> None:
    _, text = await converse(db, ACME, question)
    assert "I don't understand" in text and not counts(text), text


@pytest.mark.parametrize(
    ("first", "sql"),
    [
        ("who is our newest hire", "ORDER BY hired_on DESC"),
        ("who's the highest paid technician", "ORDER BY hourly_rate DESC"),
        ("who has been here the longest", "AND status != 'inactive' ORDER BY hired_on"),
    ],
)
async def test_their_rate_is_the_one_person_just_named(db: Path, first: str, sql: str) -> None:
    expected = truth(
        db, ACME, f"SELECT hourly_rate FROM technicians WHERE company_id = :c {sql} LIMIT 1"
    )
    _, text = await converse(db, ACME, first, "and what's their hourly rate?")
    assert f"${expected:,.2f}" in text, text


async def test_their_rate_after_a_list_asks_who(db: Path) -> None:
    _, text = await converse(db, ACME, "list the active technicians", "what's his rate")
    assert "can't tell who" in text and "$" not in text, text


REVENUE = (
    "SELECT sum(j.revenue) FROM jobs j JOIN customers c ON c.id = j.customer_id"
    " WHERE j.company_id = :c AND j.status = 'completed'"
    " AND j.completed_on BETWEEN '{}' AND '{}'"
)


@pytest.mark.parametrize(
    "question",
    [
        "revenue oct vs nov",
        "which month did we earn more, august or september",
        "compare sales aug versus sept",
    ],
)
async def test_bare_months_compared_state_both(db: Path, question: str) -> None:
    months = {
        "aug": ("2026-08-01", "2026-08-31"),
        "sep": ("2026-09-01", "2026-09-30"),
        "oct": ("2026-10-01", "2026-10-31"),
        "nov": ("2026-11-01", "2026-11-30"),
    }
    named = [m for m in months if m in question]
    _, text = await converse(db, ACME, question)
    for month in named:
        value = truth(db, ACME, REVENUE.format(*months[month]))
        assert f"${value:,.0f}" in text or f"${value:,.2f}" in text, text


async def test_a_span_with_through_is_every_month_of_it(db: Path) -> None:
    expected = truth(db, ACME, REVENUE.format("2026-04-01", "2026-06-30"))
    _, text = await converse(db, ACME, "revenue april thru june")
    assert f"${expected:,.0f}" in text or f"${expected:,.2f}" in text, text


SHARE = (
    "SELECT round(100.0 * sum(CASE WHEN c.segment = 'residential' THEN j.revenue ELSE 0 END)"
    " / sum(j.revenue), 1) FROM jobs j JOIN customers c ON c.id = j.customer_id"
    " WHERE j.company_id = :c AND j.status = 'completed'"
)


@pytest.mark.parametrize(
    "questions",
    [
        ("what share of our revenue is from residential customers",),
        ("percent of sales from homeowners",),
        ("total revenue", "what percentage of it was residential"),
    ],
)
async def test_a_share_of_revenue_is_money_not_rows(db: Path, questions: tuple[str, ...]) -> None:
    _, text = await converse(db, ACME, *questions)
    assert f"{truth(db, ACME, SHARE)}%" in text, text


async def test_lists_state_the_total_once(db: Path) -> None:
    _, text = await converse(db, ACME, "list every cancelled job")
    total = truth(
        db, ACME, "SELECT count(*) FROM jobs WHERE company_id = :c AND status = 'cancelled'"
    )
    assert total > 10
    assert set(counts(text)) == {total}, text


@pytest.mark.parametrize("question", ["whats our vision insurance", "how does the pension work"])
async def test_a_topic_nothing_covers_gets_a_plain_no(db: Path, question: str) -> None:
    route, text = await converse(db, ACME, question)
    assert route == "general"
    assert text.startswith("I don't have information about that")


@pytest.mark.parametrize(
    "question", ["how much revenue does bluepeak make", "does citywide have more techs than us"]
)
async def test_another_company_named_in_lower_case_is_refused(db: Path, question: str) -> None:
    _, text = await converse(db, ACME, question)
    assert "only see your own company's data" in text and not counts(text), text
