"""Precision checks between reading a question and answering it: a spec is run only when every
part of the question is understood, and never as a nearby question.

Each check returns the plain-language reason a question is not answered (which part is not
understood, and what can be answered instead), or the spec to run, adjusted where the question's
meaning is certain (technicians "today" means current staff, not hires of today).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Final

from agent_service.providers.offline.question import Spec
from agent_service.providers.offline.reading import Reading
from agent_service.providers.offline.refusals import CAN_DO, FORECAST

_FUTURE_ONLY_METRICS: Final = frozenset(
    {"revenue_sum", "revenue_avg", "duration_avg", "cancel_rate"}
)
_DONE_STATUSES: Final = frozenset({"completed", "cancelled"})


def _quoted(words: tuple[str, ...]) -> str:
    shown = [f"“{w}”" for w in words[:4]]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def unknown_words_message(words: tuple[str, ...]) -> str:
    """The reply to a data question with words nothing accounts for."""
    plural = len(words) > 1
    return (
        f"I can't answer that exactly: I don't understand {_quoted(words)} in this question,"
        f" and I'd rather say so than answer a different question. "
        + ("Those words don't" if plural else "That word doesn't")
        + f" match anything in the data I can read. {CAN_DO}"
    )


def _in_future(spec: Spec, today: date) -> bool:
    periods = [p for p in (spec.period, spec.compare) if p is not None]
    future = any(date.fromisoformat(p.start) > today for p in periods)
    done = spec.metric in _FUTURE_ONLY_METRICS or bool(_DONE_STATUSES & set(spec.job_status))
    return future and done and spec.subject == "jobs"


def checked_spec(spec: Spec, reading: Reading, today: date) -> Spec | str:
    """`spec` (possibly adjusted) when it answers exactly what was asked, else the reason not."""
    if reading.self_ref:
        return (
            "I can't tell who you are from the question, so I can't pick out your own records."
            " Name the technician or customer instead, for example “jobs for Victor Chen today”."
        )
    if reading.loose_period and not reading.move:
        return (
            "I can't tell which dates you mean. Please name the period, for example “last"
            " month”, “last quarter”, “in October” or “between June and August”."
        )
    if (
        reading.averaged
        and spec.metric in {"list", "count", "share", "revenue_share"}
        and spec.compare is None
    ):
        return (
            "I can't work out that average: I can average revenue per job, the hourly rate and"
            " the days a job takes from scheduled to completed, but not what this asks."
        )
    period = spec.period
    if spec.subject == "technicians" and period is not None and not spec.without_jobs:
        if period.label.startswith("today") and not reading.hired:
            spec = replace(spec, period=None)  # "technicians we have today": current staff
        elif not reading.hired:
            return (
                "I can't tell who was on staff at a past date: the data only has each"
                " technician's hire date and current status. I can count or list technicians"
                f" hired {period.label}, or your current technicians by status."
            )
    if _in_future(spec, today):
        return FORECAST
    if spec.metric == "revenue_share" and not (spec.segment or spec.city or spec.specialty):
        return (
            "I can't tell which part of the revenue you mean: I can give the share of revenue"
            " from commercial or residential customers, a city, or a specialty, for example"
            " “what percent of revenue came from commercial customers?”."
        )
    if spec.metric == "share" and not _share_part(spec):
        return (
            "I can't tell what share you mean: please name what to count as a part of the whole,"
            " for example “what percent of jobs were cancelled?” or “what share of technicians"
            " are on leave?”."
        )
    if spec.compare is not None:
        if spec.subject != "jobs" or spec.group is not None:
            return (
                "I can compare two periods only for jobs and revenue (for example “revenue in"
                " September vs October”), not for this question."
            )
        if spec.metric == "list":
            spec = replace(spec, metric="count")
    return spec


def _share_part(spec: Spec) -> bool:
    if spec.subject == "jobs":
        return bool(spec.job_status or spec.unassigned or spec.overdue)
    if spec.subject == "technicians":
        return bool(spec.tech_status or spec.specialty)
    return bool(spec.segment or spec.city)
