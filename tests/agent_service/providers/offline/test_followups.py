"""Conversations with the offline provider, driven the way the workflow drives it: classify, draft,
run through the real tenant-enforcing executor, remember, answer. Follow-ups must re-use what the
earlier turn left in memory, and only ever within the caller's own company."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agent_service.demo.data import seed_database
from agent_service.providers.base import AskContext, SqlDraft, Turn, Unanswerable, UsageMeter
from agent_service.providers.offline.provider import OfflineProvider
from agent_service.sql.executor import SqliteExecutor
from agent_service.sql.schema import curated_schema


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return seed_database(tmp_path_factory.mktemp("offline-followups") / "demo.db").path


def one(db: Path, sql: str, tenant: str) -> Any:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, {"c": tenant}).fetchone()
    finally:
        conn.close()


@dataclass
class Reply:
    route: str
    text: str
    sql: str = ""
    note: str = ""


@dataclass
class Conversation:
    """A stand-in for the graph's bookkeeping: memory kept the way the workflow keeps it."""

    db: Path
    tenant: str
    provider: OfflineProvider = field(default_factory=OfflineProvider)
    memory: dict[str, Any] = field(default_factory=dict)
    history: list[Turn] = field(default_factory=list)

    def ask(self, question: str) -> AskContext:
        return AskContext(question, tuple(self.history), dict(self.memory), UsageMeter())

    async def say(self, question: str) -> Reply:
        choice = await self.provider.classify(self.ask(question))
        self.memory["last_route"] = choice.route
        reply = Reply(choice.route, "")
        if choice.route == "sql":
            drafted = await self.provider.draft_sql(self.ask(question), curated_schema(), ())
            if isinstance(drafted, Unanswerable):
                reply.text = "".join(
                    [
                        t
                        async for t in self.provider.answer_plainly(
                            self.ask(question), drafted.message
                        )
                    ]
                )
            else:
                result = await SqliteExecutor(self.db).run(self.tenant, drafted.sql)
                ask = self.ask(question)
                reply.text = "".join([t async for t in self.provider.answer_from_rows(ask, result)])
                reply.sql, reply.note = drafted.sql, drafted.note
                # What the graph stores; it must survive a JSON round trip (the checkpointer).
                self.memory["provider"] = {**self.memory.get("provider", {}), **drafted.memory}
                self.memory["last_result"] = {
                    "columns": list(result.columns),
                    "rows": [list(row) for row in result.rows[:20]],
                    "sql": result.sql,
                }
                self.memory = json.loads(json.dumps(self.memory))
        self.history += [Turn("user", question), Turn("assistant", reply.text)]
        return reply


@pytest.mark.parametrize("tenant", ["acme-hvac", "citywide-electric"])
async def test_and_how_many_are_on_leave_reapplies_the_count(db: Path, tenant: str) -> None:
    chat = Conversation(db, tenant)
    active = one(
        db, "SELECT count(*) FROM technicians WHERE company_id = :c AND status = 'active'", tenant
    )[0]
    on_leave = one(
        db, "SELECT count(*) FROM technicians WHERE company_id = :c AND status = 'on_leave'", tenant
    )[0]
    first = await chat.say("How many technicians are active?")
    assert first.text == f"You have {active} active technicians."
    second = await chat.say("and how many are on leave?")
    assert second.route == "sql"
    noun = "technician" if on_leave == 1 else "technicians"
    assert second.text == f"You have {on_leave} {noun} on leave."
    listed = await chat.say("list them")
    assert listed.text.count("\n- ") == on_leave
    assert "on leave" in listed.text


@pytest.mark.parametrize("tenant", ["acme-hvac", "bluepeak-plumbing"])
async def test_tell_me_about_the_first_one_looks_up_that_job(db: Path, tenant: str) -> None:
    chat = Conversation(db, tenant)
    listed = await chat.say("List completed jobs in October")
    first_id, title = one(
        db,
        "SELECT id, title FROM jobs WHERE company_id = :c AND status = 'completed'"
        " AND completed_on LIKE '2026-10-%' ORDER BY completed_on, id LIMIT 1",
        tenant,
    )
    assert f"#{first_id} {title}" in listed.text.splitlines()[1]
    detail = await chat.say("tell me about the first one")
    assert detail.route == "sql"
    assert f"WHERE j.id = {first_id}" in detail.sql
    assert detail.text.startswith(f"Job #{first_id}, {title},")
    # The list is still the context: a status follow-up keeps the month.
    cancelled = await chat.say("what about cancelled ones?")
    expected = one(
        db,
        "SELECT count(*) FROM jobs WHERE company_id = :c AND status = 'cancelled'"
        " AND scheduled_on LIKE '2026-10-%'",
        tenant,
    )[0]
    assert "cancelled jobs scheduled in October 2026" in cancelled.text
    assert cancelled.text.count("\n- ") == min(expected, 10)


async def test_the_second_one_of_a_ranking_is_that_technician(db: Path) -> None:
    chat = Conversation(db, "citywide-electric")
    await chat.say("Top 5 technicians by revenue this year")
    second_id, name = one(
        db,
        "SELECT t.id, t.name FROM jobs j JOIN technicians t ON t.id = j.technician_id"
        " WHERE j.company_id = :c AND j.status = 'completed' AND j.completed_on LIKE '2026-%'"
        " GROUP BY t.id ORDER BY sum(j.revenue) DESC, t.id LIMIT 1 OFFSET 1",
        "citywide-electric",
    )
    detail = await chat.say("more about the second one")
    assert f"WHERE t.id = {second_id}" in detail.sql
    assert detail.text.startswith(f"{name} is a technician")


async def test_more_about_a_name_in_the_last_answer_uses_its_id(db: Path) -> None:
    chat = Conversation(db, "acme-hvac")
    await chat.say("Who are our newest hires?")
    name = chat.memory["last_result"]["rows"][0][1]
    tech_id = chat.memory["last_result"]["rows"][0][0]
    detail = await chat.say(f"tell me more about {name}")
    assert f"WHERE t.id = {tech_id}" in detail.sql
    assert detail.text.startswith(f"{name} is a technician")


async def test_a_period_follow_up_keeps_the_rest_of_the_question(db: Path) -> None:
    chat = Conversation(db, "acme-hvac")
    await chat.say("What was our revenue in October?")
    september = await chat.say("what about September?")
    expected = one(
        db,
        "SELECT sum(revenue) FROM jobs WHERE company_id = :c AND status = 'completed'"
        " AND completed_on LIKE '2026-09-%'",
        "acme-hvac",
    )[0]
    assert september.text == f"Revenue from jobs completed in September 2026 was ${expected:,.0f}."


async def test_the_first_one_without_an_earlier_list_is_explained(db: Path) -> None:
    chat = Conversation(db, "acme-hvac")
    reply = await chat.say("tell me about the first one")
    assert "earlier list" in reply.text
    assert not reply.sql


async def test_an_ordinal_past_the_end_is_explained(db: Path) -> None:
    chat = Conversation(db, "acme-hvac")
    await chat.say("Which technicians are inactive?")
    reply = await chat.say("tell me about the ninth one")
    assert reply.text == "The last answer only had 1 row I can refer back to."
    assert not reply.sql


async def test_a_forged_id_in_memory_is_still_confined_to_the_tenant(db: Path) -> None:
    other_id = one(
        db, "SELECT id FROM technicians WHERE company_id = :c LIMIT 1", "citywide-electric"
    )[0]
    chat = Conversation(db, "acme-hvac")
    chat.memory["last_result"] = {"columns": ["technician_id", "name"], "rows": [[other_id, "X"]]}
    reply = await chat.say("tell me about the first one")
    assert f"WHERE t.id = {other_id}" in reply.sql
    assert reply.text == "I couldn't find that technician any more."


@pytest.mark.parametrize(
    "memory",
    [
        {"provider": "nonsense"},
        {"provider": {"offline": {"spec": {"subject": "jobs", "metric": "drop table"}}}},
        {
            "provider": {
                "offline": {
                    "spec": {
                        "subject": "jobs",
                        "period": {"start": "x'; --", "end": "y", "label": "z"},
                    }
                }
            }
        },
        {"last_result": {"columns": "abc", "rows": 5}},
        {"last_result": {"columns": ["technician_id"], "rows": [["1 OR 1=1"]]}},
    ],
)
async def test_malformed_memory_never_crashes_or_reaches_sql(memory: dict[str, Any]) -> None:
    provider = OfflineProvider()
    for question in ("and how many are on leave?", "tell me about the first one"):
        drafted = await provider.draft_sql(
            AskContext(question, (), memory, UsageMeter()), curated_schema(), ()
        )
        if isinstance(drafted, SqlDraft):
            assert "OR 1=1" not in drafted.sql and "--" not in drafted.sql
        else:
            assert drafted.message


async def test_a_named_technicians_hourly_rate(db: Path) -> None:
    name, rate = one(
        db,
        "SELECT name, hourly_rate FROM technicians WHERE company_id = :c ORDER BY id",
        "acme-hvac",
    )
    chat = Conversation(db, "acme-hvac")
    reply = await chat.say(f"What is {name}'s hourly rate?")
    assert (
        reply.text == f"The hourly rate of the technician named like “{name}” is ${rate:,.2f}/hour."
    )


async def test_a_filter_that_only_fits_another_subject_switches_to_it(db: Path) -> None:
    chat = Conversation(db, "acme-hvac")
    await chat.say("How many technicians are active?")
    cancelled = await chat.say("what about cancelled ones?")
    expected = one(
        db, "SELECT count(*) FROM jobs WHERE company_id = :c AND status = 'cancelled'", "acme-hvac"
    )[0]
    assert cancelled.text == f"There are {expected} cancelled jobs."
