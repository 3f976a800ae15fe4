"""How the offline provider says what a `Spec` is about: noun phrases, notes and headings."""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from agent_service.providers.offline.question import Spec
from agent_service.providers.offline.sql import job_date_column, job_statuses, ranks_jobs_by_revenue

_SPECIALTY_WORDS: Final[dict[str, str]] = {
    "plumb": "plumbing",
    "electric": "electrical work",
    "carpent": "carpentry",
    "landscap": "landscaping",
    "roof": "roofing",
    "drain": "drains",
    "fixture": "fixtures",
    "generator": "generators",
    "water heater": "water heaters",
    "panel upgrade": "panel upgrades",
    "ev charger": "EV chargers",
    "hvac": "HVAC",
}
_JOB_STATUS_WORDS: Final[dict[str, str]] = {
    "scheduled": "scheduled",
    "in_progress": "in-progress",
    "completed": "completed",
    "cancelled": "cancelled",
}
_GROUP_WORDS: Final[dict[str, str]] = {
    "month": "month",
    "status": "status",
    "specialty": "specialty",
    "technician": "technician",
    "customer": "customer",
    "segment": "segment",
    "city": "city",
}


def specialty_words(stem: str) -> str:
    """The readable name of a specialty stem ("plumb" -> "plumbing")."""
    return _SPECIALTY_WORDS.get(stem, stem)


def _quoted(name: str) -> str:
    return f"“{name}”"


def _job_status_adjective(statuses: tuple[str, ...]) -> str:
    if set(statuses) == {"scheduled", "in_progress"}:
        return "open"
    return " or ".join(_JOB_STATUS_WORDS.get(s, s) for s in statuses)


def noun_phrase(spec: Spec, *, plural: bool = True) -> str:
    """What the rows are, e.g. "active technicians specializing in heating"."""
    if spec.subject == "technicians":
        return _technicians_phrase(spec, plural)
    if spec.subject == "customers":
        return _customers_phrase(spec, plural)
    return _jobs_phrase(spec, plural)


def _technicians_phrase(spec: Spec, plural: bool) -> str:
    words = []
    if spec.tech_status in {"active", "inactive", "current"}:
        words.append(spec.tech_status)
    words.append("technicians" if plural else "technician")
    if spec.tech_status == "on_leave":
        words.append("on leave")
    if spec.specialty:
        words.append(f"specializing in {specialty_words(spec.specialty)}")
    if name := spec.technician or spec.person:
        words.append(f"named like {_quoted(name)}")
    if spec.without_jobs:
        words.append("with no jobs" + (f" scheduled {spec.period.label}" if spec.period else ""))
    elif spec.period:
        words.append(f"hired {spec.period.label}")
    return " ".join(words)


def _customers_phrase(spec: Spec, plural: bool) -> str:
    words = []
    if spec.segment:
        words.append(spec.segment)
    words.append("customers" if plural else "customer")
    if spec.city:
        words.append(f"in {spec.city}")
    if name := spec.customer or spec.person:
        words.append(f"named like {_quoted(name)}")
    if spec.without_jobs:
        words.append("with no jobs" + (f" scheduled {spec.period.label}" if spec.period else ""))
    elif spec.period:
        words.append(f"with jobs scheduled {spec.period.label}")
    return " ".join(words)


def _jobs_phrase(spec: Spec, plural: bool) -> str:
    by_completion = job_date_column(spec) == "j.completed_on"
    statuses = job_statuses(spec)
    words = []
    if spec.overdue:
        words.append("overdue")
    if spec.unassigned:
        words.append("unassigned")
    if statuses and not (by_completion and statuses == ("completed",) and spec.period):
        words.append(_job_status_adjective(statuses))
    words.append("jobs" if plural else "job")
    if spec.period:
        words.append(("completed " if by_completion else "scheduled ") + spec.period.label)
    if spec.segment:
        words.append(f"for {spec.segment} customers")
    if spec.city:
        words.append(f"for customers in {spec.city}")
    if spec.customer:
        words.append(f"for customers named like {_quoted(spec.customer)}")
    if spec.technician:
        words.append(f"done by technicians named like {_quoted(spec.technician)}")
    if spec.person:
        words.append(f"involving {_quoted(spec.person)}")
    if spec.tech_status:
        words.append(
            f"assigned to {noun_phrase(Spec('technicians', tech_status=spec.tech_status))}"
        )
    if spec.specialty:
        words.append(f"done by {specialty_words(spec.specialty)} technicians")
    return " ".join(words)


def measure_phrase(spec: Spec) -> str:
    """What the value column measures, e.g. "revenue" or "number of jobs"."""
    return {
        "revenue_sum": "revenue",
        "revenue_avg": "average revenue per job",
        "duration_avg": "average days from scheduled to completed",
        "cancel_rate": "cancellation rate",
        "rate_avg": "average hourly rate",
    }.get(spec.metric, spec.subject if spec.subject != "jobs" else "number of jobs")


def draft_note(spec: Spec) -> str:
    """The one user-visible line about what the query does ("Counting active technicians.")."""
    if spec.compare is not None and spec.period is not None:
        whole = noun_phrase(replace(spec, period=None, compare=None))
        return (
            f"Comparing the {measure_phrase(spec)} of {whole} {spec.period.label} and"
            f" {spec.compare.label}."
        )
    things = noun_phrase(spec)
    if spec.group is not None:
        verb = _METRIC_NOTES.get(spec.metric, "Counting {}").format(things)
        if spec.order == "value" and spec.limit:
            which = "top" if spec.descending else "bottom"
            ranked = f"{which} {spec.limit}" if spec.limit > 1 else which
            return f"{verb} per {_GROUP_WORDS[spec.group]}, to find the {ranked}."
        return f"{verb} per {_GROUP_WORDS[spec.group]}."
    if spec.order == "hired_on":
        which = "most recently hired" if spec.descending else "longest-serving"
        return f"Listing the {which} {things}."
    if ranks_jobs_by_revenue(spec):
        which = "biggest" if spec.descending else "smallest"
        return f"Listing the {which} {things} by revenue."
    if spec.order == "hourly_rate":
        which = "highest" if spec.descending else "lowest"
        return f"Listing {things} with the {which} hourly rates."
    return _METRIC_NOTES[spec.metric].format(things) + "."


_METRIC_NOTES: Final[dict[str, str]] = {
    "count": "Counting {}",
    "list": "Listing {}",
    "revenue_sum": "Adding up revenue from {}",
    "revenue_avg": "Averaging revenue over {}",
    "rate_avg": "Averaging the hourly rate of {}",
    "duration_avg": "Measuring how long {} took",
    "cancel_rate": "Working out how many {} were cancelled",
    "share": "Working out the share of {}",
    "revenue_share": "Working out the share of revenue from {}",
}
