"""Turn a question plus the conversation's memory into one query plan, or say why not.

Follow-ups are resolved here: a question that only changes a filter re-applies the previous spec,
"the first one" picks a row of the previous result by its id column, "more about <name>" looks the
name up. Memory is read defensively: it is ours, but a malformed entry must never crash a run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Final

from agent_service.providers.base import JsonDict, Unanswerable
from agent_service.providers.offline.checks import checked_spec, unknown_words_message
from agent_service.providers.offline.comparisons import comparison_sql
from agent_service.providers.offline.phrasing import draft_note
from agent_service.providers.offline.question import (
    NotUnderstood,
    Spec,
    merge_follow_up,
    spec_from_reading,
)
from agent_service.providers.offline.reading import Reading, read_question
from agent_service.providers.offline.refusals import refusal_for
from agent_service.providers.offline.shares import revenue_share_sql, share_note, share_sql
from agent_service.providers.offline.sql import DetailKind, build_sql, detail_sql, name_lookup_sql

MEMORY_KEY: Final = "offline"
"""The provider's own entry inside `memory["provider"]`."""
EXAMPLES: Final = (
    "How many technicians are active?",
    "What was our revenue in October?",
    "Top 5 technicians by completed jobs this year",
)
HELP: Final = (
    "I can't tell what to count or list in that question, so I won't guess. "
    "I can answer questions about your technicians, customers, jobs and revenue, for example: "
    + ", ".join(f"“{q}”" for q in EXAMPLES)
    + "."
)
_ID_COLUMNS: Final[dict[str, DetailKind]] = {
    "technician_id": "technician",
    "customer_id": "customer",
    "job_id": "job",
}
_NAME_COLUMNS: Final[dict[str, DetailKind]] = {"technician": "technician", "customer": "customer"}


@dataclass(frozen=True, slots=True)
class Plan:
    """One statement to run, the note that explains it, and what to remember for follow-ups."""

    sql: str
    note: str
    shape: str
    """"spec", "detail:<kind>" or "lookup": how the answer should read the rows."""
    spec: Spec | None = None
    context: Spec | None = None
    """The spec a detail or lookup keeps alive, so "what about cancelled ones?" still works."""

    def memory(self) -> JsonDict:
        """The provider-private memory this plan leaves behind."""
        kept = self.spec or self.context
        return {
            MEMORY_KEY: {
                "spec": kept.to_json() if kept else None,
                "sql": self.sql,
                "shape": self.shape,
            }
        }


def remembered(memory: Mapping[str, Any]) -> Mapping[str, Any]:
    """The provider's own entry from the conversation memory, or an empty mapping."""
    provider = memory.get("provider")
    entry = provider.get(MEMORY_KEY) if isinstance(provider, Mapping) else None
    return entry if isinstance(entry, Mapping) else {}


def _last_result(memory: Mapping[str, Any]) -> tuple[list[str], list[Sequence[Any]]] | None:
    last = memory.get("last_result")
    if not isinstance(last, Mapping):
        return None
    columns, rows = last.get("columns"), last.get("rows")
    if not isinstance(columns, Sequence) or not isinstance(rows, Sequence):
        return None
    names = [str(c) for c in columns]
    kept = [r for r in rows if isinstance(r, Sequence) and not isinstance(r, str)]
    return names, [r for r in kept if len(r) == len(names)]


def _row_id(row: Sequence[Any], index: int) -> int | None:
    value = row[index]
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str) and value.isdigit() and len(value) < 12:
        return int(value)
    return None


def _detail_target(columns: list[str], row: Sequence[Any]) -> tuple[DetailKind, int] | None:
    """Which technician, customer or job a result row is about, by its id column."""
    if "kind" in columns and "id" in columns:
        kind = row[columns.index("kind")]
        row_id = _row_id(row, columns.index("id"))
        if kind in {"technician", "customer", "job"} and row_id is not None:
            return kind, row_id
    for column, kind in _ID_COLUMNS.items():
        if column in columns and (row_id := _row_id(row, columns.index(column))) is not None:
            return kind, row_id
    return None


def _detail_plan(kind: DetailKind, row_id: int, label: str) -> Plan:
    return Plan(detail_sql(kind, row_id), f"Looking up {label}.", f"detail:{kind}")


def _by_ordinal(reading: Reading, memory: Mapping[str, Any]) -> Plan | Unanswerable:
    last = _last_result(memory)
    if last is None or not last[1]:
        return Unanswerable("I don't have an earlier list to pick from. " + HELP)
    columns, rows = last
    assert reading.ordinal is not None
    index = len(rows) - 1 if reading.ordinal == -1 else reading.ordinal - 1
    if not 0 <= index < len(rows):
        count = f"{len(rows)} row" + ("" if len(rows) == 1 else "s")
        return Unanswerable(f"The last answer only had {count} I can refer back to.")
    target = _detail_target(columns, rows[index])
    if target is None:
        return Unanswerable(
            "The last answer was a summary, not a list of technicians, customers or jobs, "
            "so there is no single item to look up."
        )
    kind, row_id = target
    return _detail_plan(kind, row_id, f"the {kind} in row {index + 1} of the last answer")


def _by_name(name: str, memory: Mapping[str, Any]) -> Plan:
    last = _last_result(memory)
    needle = name.casefold()
    if last is not None:
        columns, rows = last
        for row in rows:
            for index, column in enumerate(columns):
                cell = row[index]
                if not (isinstance(cell, str) and needle in cell.casefold()):
                    continue
                if column == "name" and (target := _detail_target(columns, row)):
                    return _detail_plan(target[0], target[1], f"{target[0]} {cell}")
                kind = _NAME_COLUMNS.get(column)
                id_column = f"{kind}_id"
                if (
                    kind
                    and id_column in columns
                    and (row_id := _row_id(row, columns.index(id_column))) is not None
                ):
                    return _detail_plan(kind, row_id, f"{kind} {cell}")
    return Plan(
        name_lookup_sql(name),
        f"Looking up technicians and customers named like “{name}”.",
        "lookup",
    )


def _one_person(memory: Mapping[str, Any]) -> str | None:
    """The one technician the last answer named ("who is our newest hire?"), if exactly one."""
    last = _last_result(memory)
    if last is None or len(last[1]) != 1:
        return None
    columns, rows = last
    if "name" in columns and "technician_id" in columns:
        name = rows[0][columns.index("name")]
        return name if isinstance(name, str) and name.strip() else None
    return None


def _keeping(plan: Plan | Unanswerable, previous: Spec | None) -> Plan | Unanswerable:
    return replace(plan, context=previous) if isinstance(plan, Plan) else plan


def statement_for(spec: Spec, today_iso: str) -> str:
    """The one statement for `spec`: a comparison, a share, or one of the plain shapes."""
    if spec.compare is not None:
        return comparison_sql(spec, today_iso)
    if spec.metric == "share":
        return share_sql(spec, today_iso)
    if spec.metric == "revenue_share":
        return revenue_share_sql(spec, today_iso)
    return build_sql(spec, today_iso)


def _spec_plan(spec: Spec, today: date) -> Plan:
    note = draft_note(spec)
    if spec.metric in {"share", "revenue_share"} and spec.compare is None:
        note = share_note(spec)
    return Plan(statement_for(spec, today.isoformat()), note, "spec", spec)


def _checked_plan(spec: Spec, reading: Reading, today: date) -> Plan | Unanswerable:
    checked = checked_spec(spec, reading, today)
    return Unanswerable(checked) if isinstance(checked, str) else _spec_plan(checked, today)


def plan_question(
    question: str, memory: Mapping[str, Any], today: date, max_top_n: int = 50
) -> Plan | Unanswerable:
    """The plan for `question` in the light of what earlier turns left in `memory`."""
    if refusal := refusal_for(question):
        return Unanswerable(refusal)
    reading = read_question(question, today, max_top_n)
    if reading.unknown:
        return Unanswerable(unknown_words_message(reading.unknown))
    previous = Spec.from_json(remembered(memory).get("spec"), max_top_n)
    if reading.pronoun and not (reading.person or reading.about or reading.technician):
        person = _one_person(memory)
        if person is None:
            return Unanswerable(
                "I can't tell who “they” are: the last answer didn't name exactly one person."
                " Please say the name, for example “what is Victor Chen's hourly rate?”."
            )
        reading = replace(reading, person=person, subject=reading.subject or "technicians")
    try:
        if reading.ordinal is not None and not (
            reading.person or reading.customer or reading.technician
        ):
            return _keeping(_by_ordinal(reading, memory), previous)
        if reading.about and not reading.subject:
            return _keeping(_by_name(reading.about, memory), previous)
        if previous is not None and (
            reading.follow_up or (reading.subject is None and reading.has_filters())
        ):
            return _checked_plan(merge_follow_up(previous, reading), reading, today)
        if reading.subject is None:
            if reading.person and reading.metric in {None, "list"}:
                return _keeping(_by_name(reading.person, memory), previous)
            return Unanswerable(HELP)
        return _checked_plan(spec_from_reading(reading, reading.subject), reading, today)
    except NotUnderstood as exc:
        return Unanswerable(str(exc))
    except ValueError:
        return Unanswerable("I could not turn that into a safe query. " + HELP)


def _simpler(spec: Spec) -> list[Spec]:
    """Ever plainer versions of a spec to try after a failure: no grouping, then a bare count."""
    return [
        replace(spec, group=None, order="", limit=None, metric="count"),
        Spec(spec.subject, metric="count"),
    ]


def plan_with_attempts(
    question: str,
    memory: Mapping[str, Any],
    today: date,
    attempted: Sequence[str],
    max_top_n: int = 50,
) -> Plan | Unanswerable:
    """Like `plan_question`, but never a statement already tried: fall back to a simpler shape,
    and give up plainly when none is left."""
    plan = plan_question(question, memory, today, max_top_n)
    tried = {" ".join(sql.split()) for sql in attempted}
    if isinstance(plan, Unanswerable) or " ".join(plan.sql.split()) not in tried:
        return plan
    for simpler in _simpler(plan.spec) if plan.spec else []:
        candidate = _spec_plan(simpler, today)
        if " ".join(candidate.sql.split()) not in tried:
            return replace(
                candidate,
                note="That query failed, so trying a simpler one: "
                + candidate.note[0].lower()
                + candidate.note[1:],
            )
    return Unanswerable("I couldn't get a working query for that question, sorry. " + HELP)
