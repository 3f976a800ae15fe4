"""Percentages and shares: "what percent of jobs were cancelled", "what share of technicians are
on leave". The part is the question's status (or segment, specialty, city) filter; the whole is the
same question without it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Final

from agent_service.providers.offline.phrasing import noun_phrase, specialty_words
from agent_service.providers.offline.question import Spec
from agent_service.providers.offline.sql import build_sql, like_literal, text_literal
from agent_service.providers.offline.values import number

_STATUSES: Final = frozenset(
    {"active", "on_leave", "inactive", "scheduled", "in_progress", "completed", "cancelled"}
)
_SAID: Final[dict[str, str]] = {
    "on_leave": "on leave",
    "in_progress": "in progress",
}


def _statuses(values: tuple[str, ...]) -> str:
    if not set(values) <= _STATUSES:
        raise ValueError("unknown status")
    return ", ".join(f"'{v}'" for v in values)


def share_parts(spec: Spec) -> tuple[Spec, str]:
    """(the whole, how to say the part) of a share question."""
    if spec.subject == "jobs":
        if spec.job_status:
            said = " or ".join(_SAID.get(s, s) for s in spec.job_status)
            return replace(spec, job_status=()), said
        if spec.unassigned:
            return replace(spec, unassigned=False), "unassigned"
        return replace(spec, overdue=False), "overdue"
    if spec.subject == "technicians":
        if spec.tech_status:
            return replace(spec, tech_status=None), _SAID.get(spec.tech_status, spec.tech_status)
        return replace(
            spec, specialty=None
        ), f"specializing in {specialty_words(spec.specialty or '')}"
    if spec.segment:
        return replace(spec, segment=None), spec.segment
    return replace(spec, city=None), f"in {spec.city}"


def _condition(spec: Spec, today_iso: str) -> str:
    """The SQL condition that picks the part out of the whole."""
    if spec.subject == "jobs":
        if spec.job_status:
            return f"j.status IN ({_statuses(spec.job_status)})"
        if spec.unassigned:
            return "j.technician_id IS NULL"
        return "j.status IN ('scheduled', 'in_progress') AND j.scheduled_on < " + text_literal(
            today_iso
        )
    if spec.subject == "technicians":
        if spec.tech_status:
            return f"t.status IN ({_statuses((spec.tech_status,))})"
        return f"t.specialty LIKE {like_literal(spec.specialty or '')}"
    if spec.segment:
        return f"c.segment = {text_literal(spec.segment)}"
    return f"c.city LIKE {like_literal(spec.city or '')}"


def share_sql(spec: Spec, today_iso: str) -> str:
    """One statement: the percent of the whole that is the part, the part and the whole."""
    whole, _ = share_parts(spec)
    condition = _condition(spec, today_iso)
    counted = build_sql(replace(whole, metric="count", group=None, order="", limit=None), today_iso)
    head, _, rest = counted.partition(" FROM ")
    if not head.startswith("SELECT count(*) AS "):
        raise ValueError("no share for this question")
    part = f"sum(CASE WHEN {condition} THEN 1 ELSE 0 END)"
    return (
        f"SELECT CASE WHEN count(*) = 0 THEN 0 ELSE round(100.0 * {part} / count(*), 1) END"
        f" AS percent, coalesce({part}, 0) AS part, count(*) AS total FROM {rest}"
    )


def share_answer(spec: Spec, row: dict[str, Any]) -> str:
    """ "11.2% of jobs scheduled this year were cancelled (28 of 250)."."""
    whole, said = share_parts(spec)
    things = noun_phrase(whole)
    total = int(row.get("total") or 0)
    if not total:
        return f"There are no {things}, so there is no percentage to give."
    part = int(row.get("part") or 0)
    percent = number(float(row.get("percent") or 0))
    done = spec.subject == "jobs" and set(spec.job_status) <= {"completed", "cancelled"}
    verb = "were" if done else "are"
    return f"{percent}% of {things} {verb} {said} ({number(part)} of {number(total)})."


def share_note(spec: Spec) -> str:
    """The note of a share question ("Working out what percent of jobs were cancelled.")."""
    whole, said = share_parts(spec)
    return f"Working out what percent of {noun_phrase(whole)} are {said}."
