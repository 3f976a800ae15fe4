"""Percentages and shares: "what percent of jobs were cancelled", "what share of technicians are
on leave". The part is the question's status (or segment, specialty, city) filter; the whole is the
same question without it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Final

from agent_service.providers.offline.phrasing import noun_phrase, specialty_words
from agent_service.providers.offline.question import Spec
from agent_service.providers.offline.sql import (
    build_sql,
    like_literal,
    specialty_condition,
    text_literal,
)
from agent_service.providers.offline.values import money, number

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
    if spec.metric == "revenue_share":
        return _revenue_parts(spec)
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
        return specialty_condition(spec.specialty or "")
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
    if spec.metric == "revenue_share":
        return f"Working out what percent of revenue from {noun_phrase(whole)} came from {said}."
    return f"Working out what percent of {noun_phrase(whole)} are {said}."


def _revenue_parts(spec: Spec) -> tuple[Spec, str]:
    """(all the revenue, how to say the part) of "what % of revenue came from commercial"."""
    whole = replace(spec, metric="revenue_sum", group=None, order="", limit=None)
    if spec.segment:
        return replace(whole, segment=None), f"{spec.segment} customers"
    if spec.city:
        return replace(whole, city=None), f"customers in {spec.city}"
    if spec.specialty:
        return replace(whole, specialty=None), (
            f"technicians specializing in {specialty_words(spec.specialty)}"
        )
    raise ValueError("no part of the revenue named")


def _revenue_condition(spec: Spec) -> str:
    if spec.segment:
        return f"c.segment = {text_literal(spec.segment)}"
    if spec.city:
        return f"c.city LIKE {like_literal(spec.city)}"
    return specialty_condition(spec.specialty or "")


def revenue_share_sql(spec: Spec, today_iso: str) -> str:
    """One statement: the percent of revenue the part brought in, the part and the whole."""
    whole, _ = _revenue_parts(spec)
    summed = build_sql(whole, today_iso)
    head, _, rest = summed.partition(" FROM ")
    if "sum(j.revenue)" not in head or spec.specialty:
        # a specialty needs the technicians joined for every row; keep to customer fields
        raise ValueError("no revenue share for this question")
    part = f"sum(CASE WHEN {_revenue_condition(spec)} THEN j.revenue ELSE 0 END)"
    return (
        "SELECT CASE WHEN coalesce(sum(j.revenue), 0) = 0 THEN 0"
        f" ELSE round(100.0 * {part} / sum(j.revenue), 1) END AS percent,"
        f" round(coalesce({part}, 0), 2) AS part, round(coalesce(sum(j.revenue), 0), 2) AS total"
        f" FROM {rest}"
    )


def revenue_share_answer(spec: Spec, row: dict[str, Any]) -> str:
    """ "39.6% of revenue from jobs completed in October 2026 came from commercial customers
    ($15,377 of $38,852)."."""
    whole, said = _revenue_parts(spec)
    things = noun_phrase(whole)
    total = float(row.get("total") or 0)
    if not total:
        return f"There was no revenue from {things}, so there is no percentage to give."
    percent = number(float(row.get("percent") or 0))
    part, total_text = money(row.get("part")), money(total)
    return f"{percent}% of revenue from {things} came from {said} ({part} of {total_text})."
