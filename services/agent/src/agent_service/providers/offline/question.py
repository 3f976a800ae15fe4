"""What a data question asks, read by keyword and pattern: the subject, the measure, the filters.

`Spec` is the offline provider's whole understanding of one data question. It is small and
JSON-serialisable because it is kept in the conversation's memory, so that a follow-up ("and how
many are on leave?") can re-apply it with one thing changed.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Final, get_args

from agent_service.providers.offline.measures import Group, Metric, Order, Subject
from agent_service.providers.offline.period import Period
from agent_service.providers.offline.period_moves import shift_period
from agent_service.providers.offline.reading import Reading

# the allowed values of a spec's fields, from the Literal types that define them (one list each)
SUBJECTS: Final = get_args(Subject)
METRICS: Final = frozenset(get_args(Metric))
GROUPS: Final = frozenset(get_args(Group))
ORDERS: Final = frozenset(get_args(Order))
_ISO: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class NotUnderstood(ValueError):
    """A question read well enough to know it cannot be answered; the message says why."""


@dataclass(frozen=True, slots=True)
class Spec:
    """One data question in a form the SQL builder turns into one statement."""

    subject: Subject
    metric: Metric = "list"
    group: Group | None = None
    order: Order = ""
    descending: bool = True
    limit: int | None = None
    tech_status: str | None = None
    job_status: tuple[str, ...] = ()
    specialty: str | None = None
    segment: str | None = None
    city: str | None = None
    technician: str | None = None
    customer: str | None = None
    person: str | None = None
    """A name that may be a technician's or a customer's."""
    period: Period | None = None
    compare: Period | None = None
    """A second period to compare `period` with; its rows are keyed by period."""
    unassigned: bool = False
    overdue: bool = False
    without_jobs: bool = False

    def to_json(self) -> dict[str, Any]:
        """The spec as plain JSON values, for the conversation memory."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: object, max_top_n: int = 50) -> Spec | None:
        """Rebuild a spec from memory; anything malformed yields None (memory is never trusted)."""
        if not isinstance(data, dict) or data.get("subject") not in SUBJECTS:
            return None
        try:
            values: dict[str, Any] = {
                f.name: data[f.name] for f in fields(cls) if f.name in data and f.name in _PLAIN
            }
            values["job_status"] = tuple(str(s) for s in values.get("job_status", ()))
            for name in ("period", "compare"):
                period = data.get(name)
                if isinstance(period, dict):
                    start, end = str(period["start"]), str(period["end"])
                    if not (_ISO.match(start) and _ISO.match(end)):
                        return None
                    values[name] = Period(start, end, str(period["label"]))
            spec = cls(**values)
        except (KeyError, TypeError, ValueError):
            return None
        checks = (
            spec.metric in METRICS,
            spec.group is None or spec.group in GROUPS,
            spec.order in ORDERS,
            spec.limit is None or _within(spec.limit, 1, max_top_n),
            all(isinstance(getattr(spec, n), (str, type(None))) for n in _TEXT_FIELDS),
            all(isinstance(getattr(spec, n), bool) for n in _FLAG_FIELDS),
        )
        return spec if all(checks) else None


def _within(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


_TEXT_FIELDS: Final = (
    "tech_status",
    "specialty",
    "segment",
    "city",
    "technician",
    "customer",
    "person",
)
_FLAG_FIELDS: Final = ("descending", "unassigned", "overdue", "without_jobs")
_PLAIN: Final = frozenset(
    {"subject", "metric", "group", "order", "limit", "job_status", *_TEXT_FIELDS, *_FLAG_FIELDS}
)


def status_filters(
    subject: Subject, statuses: tuple[str, ...]
) -> tuple[str | None, tuple[str, ...]]:
    """Split status words into a technician status and job statuses, as the subject implies."""
    tech: str | None = None
    jobs: list[str] = []
    for status in statuses:
        if status in {"on_leave", "inactive", "current"} or (
            status == "active" and subject != "jobs"
        ):
            tech = status
        elif status == "active":
            jobs.append("in_progress")
        elif status == "open":
            jobs.extend(("scheduled", "in_progress"))
        else:
            jobs.append(status)
    return tech, tuple(dict.fromkeys(jobs))


def spec_from_reading(reading: Reading, subject: Subject) -> Spec:
    """The spec a question asks for on its own (no earlier context)."""
    tech_status, job_status = status_filters(subject, reading.statuses)
    return Spec(
        subject=subject,
        metric=reading.metric or "list",
        group=reading.group,
        order=reading.order,
        descending=reading.descending,
        limit=reading.limit,
        tech_status=tech_status,
        job_status=job_status,
        specialty=reading.specialty,
        segment=reading.segment,
        city=reading.city,
        technician=reading.technician,
        customer=reading.customer,
        # "What is Victor Chen's hourly rate?": a name asked about filters a known subject.
        person=reading.person or reading.about,
        period=reading.period,
        compare=reading.compare,
        unassigned=reading.unassigned,
        overdue=reading.overdue,
        without_jobs=reading.without_jobs,
    )


_JOB_ONLY_STATUSES: Final = frozenset(
    {"scheduled", "in_progress", "completed", "cancelled", "open"}
)


def _implied_subject(previous: Subject, reading: Reading) -> Subject:
    """The subject a follow-up's filter implies when it does not fit the previous one
    ("what about cancelled ones?" after technicians means jobs)."""
    if previous != "jobs" and (
        _JOB_ONLY_STATUSES & set(reading.statuses) or reading.unassigned or reading.overdue
    ):
        return "jobs"
    if previous == "customers" and ({"on_leave", "inactive"} & set(reading.statuses)):
        return "technicians"
    if previous == "technicians" and (reading.segment or reading.city):
        return "customers"
    return previous


def merge_follow_up(previous: Spec, reading: Reading) -> Spec:
    """Re-apply the previous spec with what the follow-up changes ("and how many are on leave?")."""
    revenue_share = reading.metric == "share" and previous.metric in {
        "revenue_sum",
        "revenue_share",
    }
    subject = (
        "jobs" if revenue_share else reading.subject or _implied_subject(previous.subject, reading)
    )
    tech_status, job_status = status_filters(subject, reading.statuses)
    changes: dict[str, Any] = {"subject": subject}
    if revenue_share:
        changes["metric"] = "revenue_share"  # "what % of that came from commercial customers?"
    elif reading.metric:
        changes["metric"] = reading.metric
    if reading.group:
        changes.update(group=reading.group, order=reading.order, limit=reading.limit)
    elif reading.them and reading.metric in {"list", "count"}:
        # "list them" / "how many of those": the same rows, no ranking or grouping.
        changes.update(group=None, order="", limit=None)
    if reading.order and not reading.group:
        changes.update(order=reading.order, descending=reading.descending, limit=reading.limit)
    if reading.every_status and not reading.statuses:
        changes.update(tech_status=None, job_status=())  # "and in total?": every status
    if tech_status:
        changes["tech_status"] = tech_status
    if job_status:
        changes["job_status"] = job_status
    for name in ("specialty", "segment", "city", "technician", "customer", "person", "period"):
        if (value := getattr(reading, name)) is not None:
            changes[name] = value
    if reading.about is not None and reading.person is None:
        changes["person"] = reading.about
    for flag in ("unassigned", "overdue", "without_jobs"):
        if getattr(reading, flag):
            changes[flag] = True
    if reading.move is not None:
        if previous.period is None:
            raise NotUnderstood(
                "The previous answer was not about one period, so I can't tell which period comes"
                " before or after it. Please name the period, for example “in September”."
            )
        changes["period"] = shift_period(previous.period, *reading.move)
        changes["compare"] = None
    elif reading.compare is not None:
        changes["compare"] = reading.compare
    elif reading.compares and reading.period is not None and previous.period is not None:
        # "how does that compare to last month?": the previous period against the new one.
        changes.update(period=previous.period, compare=reading.period)
    elif reading.period is not None:
        changes["compare"] = None
    merged = replace(previous, **changes)
    if subject != previous.subject:
        # A new subject keeps only what still makes sense for it: the measure and the period.
        merged = replace(
            spec_from_reading(reading, subject),
            metric=reading.metric
            or (previous.metric if previous.metric in {"count", "list"} else "list"),
            period=merged.period,
            compare=merged.compare,
        )
    return merged
