"""Reading one question on its own, by keyword and pattern: subject, measure, ranking, filters.

The result is a `Reading`: what the words say, before any follow-up merging (`offline_question`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import date
from typing import Any, Final, Literal

from agent_service.providers.offline.names import place_names
from agent_service.providers.offline.period import Period, find_period

Subject = Literal["technicians", "customers", "jobs"]
Metric = Literal[
    "count", "list", "revenue_sum", "revenue_avg", "rate_avg", "duration_avg", "cancel_rate"
]
Group = Literal["month", "status", "specialty", "technician", "customer", "segment", "city"]
Order = Literal["", "value", "hourly_rate", "hired_on"]

MAX_QUESTION_CHARS: Final = 1000
"""Only this much of a question is read; the contract already caps messages."""
# Specialty words a question may name; matched as LIKE stems, so "plumber" finds "plumbing".
SPECIALTIES: Final = (
    "water heater", "leak detection", "residential wiring", "panel upgrade", "ev charger",
    "heating", "cooling", "ventilation", "refrigeration", "ductwork", "drain", "repiping",
    "fixture", "lighting", "generator", "plumb", "electric", "hvac", "roof", "carpent",
    "appliance", "solar", "paint", "landscap", "locksmith", "pest",
)  # fmt: skip
_STATUS_WORDS: Final = (
    (r"on[ _-]?leave|away on leave", "on_leave"),
    (r"inactive|former|no longer (?:with us|active|employed)", "inactive"),
    (r"in[ _-]?progress|ongoing|underway|being worked on", "in_progress"),
    (r"cancell?ed|cancell?ations?", "cancelled"),
    (r"completed?|finished|done|closed", "completed"),
    (r"scheduled|upcoming|planned|booked", "scheduled"),
    (r"open|pending|outstanding|unfinished|not (?:yet )?(?:done|completed)", "open"),
    (r"active", "active"),
)
_NUMBER_WORDS: Final[dict[str, int]] = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "twenty": 20,
}  # fmt: skip
ORDINALS: Final[dict[str, int]] = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "last": -1,
}  # fmt: skip
_NUMBER: Final = r"(\d{1,2}|" + "|".join(_NUMBER_WORDS) + ")"
_SUBJECT_WORDS: Final[tuple[tuple[Subject, str], ...]] = (
    ("technicians", "technicians?|techs?|employees?|staff|workers?|team members?|hires?|hired"
     "|specialt(?:y|ies)|hourly rates?|wages?"),
    ("customers", "customers?|clients?|accounts?"),
    ("jobs", "jobs?|work orders?|appointments?|visits?|service calls?|tasks?|revenue"
     "|earn(?:ed|ings)?|income|sales|billed|made|bring in|brought in|money"),
)  # fmt: skip
_REVENUE: Final = (
    "revenue|earn(?:ed|ings|s)?|income|sales|billed|made|make|bring in|brought in|money"
    "|job values?|average value|ticket size|average ticket"
)
_RANKED: Final = "top|best|most|highest|biggest|largest|busiest|least|lowest|fewest|worst|bottom"
_RANKABLE: Final = (
    r"technicians?|techs?|employees?|customers?|clients?|who"
    r"|months|(?:which|what|best|worst|top|busiest|biggest|slowest) month"
)
_NEWEST: Final = "newest|latest|most recent(?:ly)?|recent hires?|recently hired|last hired"
_OLDEST: Final = "longest[- ]serving|most senior|earliest hired|first hired|oldest hires?"
_UNASSIGNED: Final = (
    "unassigned|not assigned|without (?:a |any )?(?:technician|tech)"
    "|no (?:technician|tech) assigned|nobody assigned"
)
_SCHEDULED_AS_VERB: Final = (
    r"\bscheduled\s+(?:for|in|on|during|between|next|this|last|today|tomorrow|yesterday|"
    r"since|before|after)\b"
)
_SPECIALTY_PHRASE: Final = re.compile(
    r"\b(?:specializ\w* in|specialty(?: of| is)?|who do|that do)\s+([a-z][a-z ]{2,30}?)"
    r"(?:\s+(?:work|jobs?|technicians?)|[?.!,]|$)"
)
_ORDINAL: Final = re.compile(
    r"\b(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|last"
    r"|\d{1,2}(?:st|nd|rd|th))\s+(?:one|job|technician|tech|customer|client|result|row|item"
    r"|entry|person|on the list)\b"
)
_FOLLOW_UP_START: Final = re.compile(
    r"^(?:and|also|what about|how about|same|now|then|only|just|ok(?:ay)?|but|of those"
    r"|among them)\b"
)
_GROUP_WORDS: Final[tuple[tuple[Group, str], ...]] = (
    ("month", r"months?"),
    ("technician", r"technicians?|techs?|employees?"),
    ("customer", r"customers?|clients?"),
    ("segment", r"segments?|customer types?"),
    ("city", r"cit(?:y|ies)|towns?|locations?"),
    ("status", r"status(?:es)?"),
    ("specialty", r"specialt(?:y|ies)|specializations?|trades?|skills?"),
)


@dataclass(frozen=True, slots=True)
class Reading:
    """What one question says by itself, before any follow-up merging."""

    subject: Subject | None = None
    metric: Metric | None = None
    group: Group | None = None
    order: Order = ""
    descending: bool = True
    limit: int | None = None
    statuses: tuple[str, ...] = ()
    specialty: str | None = None
    segment: str | None = None
    city: str | None = None
    technician: str | None = None
    customer: str | None = None
    person: str | None = None
    period: Period | None = None
    unassigned: bool = False
    overdue: bool = False
    without_jobs: bool = False
    follow_up: bool = False
    them: bool = False
    """The question points back at the previous answer ("list them", "which of those")."""
    ordinal: int | None = None
    """1-based position (-1 = last) of an earlier result row the question refers to."""
    about: str | None = None
    """A name the user wants details about ("tell me more about Maria Lopez")."""

    def has_filters(self) -> bool:
        """Whether the question narrows or reshapes anything on its own."""
        return any(
            (self.statuses, self.specialty, self.segment, self.city, self.technician,
             self.customer, self.person, self.period, self.unassigned, self.overdue,
             self.group, self.metric not in {None, "list"}, self.order, self.without_jobs)
        )  # fmt: skip


_READING_FIELDS: Final = frozenset(f.name for f in fields(Reading))


def _has(text: str, pattern: str) -> bool:
    return re.search(rf"\b(?:{pattern})\b", text) is not None


def _subject(text: str) -> Subject | None:
    first: dict[Subject, int] = {}
    for subject, pattern in _SUBJECT_WORDS:
        if found := re.search(rf"\b(?:{pattern})\b", text):
            first[subject] = found.start()
    # The first subject named is what the question is about ("jobs for customer X").
    ordered = sorted(first.items(), key=lambda item: item[1])
    return ordered[0][0] if ordered else None


def _limit(text: str, max_top_n: int) -> int | None:
    found = re.search(rf"\b(?:top|best|first|bottom|worst|{_NEWEST}|{_OLDEST})\s+{_NUMBER}\b", text)
    found = found or re.search(
        rf"\b{_NUMBER}\s+(?:newest|latest|most|best|biggest|top|busiest|highest|lowest)\b", text
    )
    if not found:
        return None
    value = int(found[1]) if found[1].isdigit() else _NUMBER_WORDS[found[1]]
    return max(1, min(value, max_top_n))


def _group(text: str) -> Group | None:
    by = r"(?:by|per|each|for each|broken down by|grouped by|split by|across)"
    for group, words in _GROUP_WORDS:
        if re.search(rf"\b{by}\s+(?:the\s+)?(?:{words})\b", text):
            return group
    if _has(text, r"monthly|month by month|each month|every month"):
        return "month"
    if _has(text, r"residential (?:vs\.?|versus|and|or) commercial"):
        return "segment"
    # "What specialties do we have?" is a breakdown, with a count for each value.
    for group, words in (
        ("specialty", "specialt(?:y|ies)"),
        ("city", "cities"),
        ("status", "statuses"),
    ):
        if _has(text, rf"(?:what|which|list(?: the| our| all)?|all)\s+(?:{words})"):
            return group
    return None


def _measure(text: str, values: dict[str, Any]) -> None:
    """The metric: a rate, a duration, revenue, an average rate, a count or a list."""
    average = _has(text, r"average|avg|mean|typical")
    if _has(text, r"cancell?ation rate|percent(?:age)? (?:of )?(?:jobs )?cancell?ed"):
        values.update(subject="jobs", metric="cancel_rate")
    elif _has(text, r"how long|duration|turnaround|days to complete|time to complete"):
        values.update(subject="jobs", metric="duration_avg")
    elif _has(text, _REVENUE):
        per_job = average or _has(text, r"per job")
        values.update(subject="jobs", metric="revenue_avg" if per_job else "revenue_sum")
    elif (average or _has(text, r"how much|what(?:'s| is| are)")) and _has(
        text, r"hourly rates?|per hour|an hour|wages?|pay rates?"
    ):
        values.update(subject="technicians", metric="rate_avg")
    elif _has(text, r"how many|number of|count|how much|total"):
        values["metric"] = "count"
    elif _has(text, r"list|show|which|who|what are|name|give me|display|find|see"):
        values["metric"] = "list"


def _ranking(text: str, values: dict[str, Any], max_top_n: int) -> None:
    """Newest hires, highest rates, "top N ... by ...", "busiest": ordering, limit and group."""
    group = _group(text)
    ranked = _has(text, _RANKED)
    ascending = _has(text, r"least|lowest|fewest|worst|bottom")
    limit = _limit(text, max_top_n)
    if _has(text, _NEWEST):
        values.update(subject="technicians", metric="list", order="hired_on", limit=limit or 5)
    elif _has(text, _OLDEST):
        values.update(subject="technicians", metric="list", order="hired_on", limit=limit or 5)
        values["descending"] = False
    elif ranked and _has(text, r"hourly rates?|paid|pay rates?|wages?|rates?|expensive|cheapest"):
        values.update(subject="technicians", metric="list", order="hourly_rate")
        values["descending"] = not ascending
        one = _has(text, r"who|which technician|the (?:highest|lowest)")
        values["limit"] = limit or (1 if one else 5)
    elif ranked and group is None and values["subject"] == "jobs" and not _has(text, _RANKABLE):
        # "the 3 biggest jobs last month": single jobs ranked by what they earned.
        values.update(metric="list", order="value", limit=limit or 5)
        values["descending"] = not ascending
    elif ranked and group is None:
        if _has(text, r"technicians?|techs?|employees?"):
            group = "technician"
        elif _has(text, r"customers?|clients?"):
            group = "customer"
        elif _has(text, r"who"):
            group = "technician"
        elif _has(text, r"months?"):
            group = "month"
        if values.get("metric") in {None, "list"} and not _has(text, r"jobs?|work|visits?|busiest"):
            values["metric"] = "revenue_sum"  # "top customers" with no measure means by revenue
        plural = _has(text, r"technicians|techs|customers|clients|months|top")
        values.update(limit=limit or (5 if plural else 1), order="value")
        values["descending"] = not ascending
    elif ranked and group is not None:
        values.update(order="value", descending=not ascending, limit=limit)
    if group is not None:
        if values["subject"] != "jobs" and (
            group in {"technician", "customer", "month"} or _has(text, f"jobs?|work|{_REVENUE}")
        ):
            values["subject"] = "jobs"
        values["group"] = group
        if values.get("metric") in {None, "list"}:
            values["metric"] = "count"
    if _has(text, r"busiest"):
        values.update(subject="jobs", metric="count", order="value")
        values["group"] = values.get("group") or "technician"
        values["limit"] = values.get("limit") or 1


def _statuses(text: str, values: dict[str, Any]) -> None:
    statuses = [status for pattern, status in _STATUS_WORDS if _has(text, pattern)]
    if "scheduled" in statuses and re.search(_SCHEDULED_AS_VERB, text):
        statuses.remove("scheduled")  # "scheduled for today" dates the jobs, it is no status
    if "inactive" in statuses and "active" in statuses and not re.search(r"(?<!in)active", text):
        statuses.remove("active")
    if "completed" in statuses and values.get("metric") in {"revenue_sum", "revenue_avg"}:
        statuses.remove("completed")  # revenue already means completed work
    values["statuses"] = tuple(dict.fromkeys(statuses))


def _filters(text: str, values: dict[str, Any]) -> None:
    for stem in SPECIALTIES:
        if re.search(rf"\b{stem}", text):
            values["specialty"] = stem
            break
    if found := _SPECIALTY_PHRASE.search(text):
        values.setdefault("specialty", found[1].strip())
    if _has(text, r"residential|homeowners?|households?|homes?"):
        values["segment"] = "residential"
    elif _has(text, r"commercial|business(?:es)?"):
        values["segment"] = "commercial"
    values["unassigned"] = _has(text, _UNASSIGNED)
    values["overdue"] = _has(text, r"overdue|late|past due|behind schedule")
    values["without_jobs"] = _has(
        text, r"(?:no|without any|without|zero) jobs|(?:never|not) (?:booked|had a job)|idle"
    )


def _references(text: str, values: dict[str, Any]) -> None:
    """Pointers back at the previous answer: "the first one", "#3", "them", "and ...?"."""
    if found := _ORDINAL.search(text):
        word = re.sub(r"(?<=\d)(?:st|nd|rd|th)$", "", found[1])
        values["ordinal"] = int(word) if word.isdigit() else ORDINALS[word]
    elif (found := re.search(r"(?:#|\bnumber\s+)(\d{1,2})\b", text)) and not values.get("metric"):
        values["ordinal"] = int(found[1])
    values["them"] = _has(text, r"them|those|these|they|ones|that list|the same")
    values["follow_up"] = bool(_FOLLOW_UP_START.match(text) or values["them"])


def read_question(question: str, today: date, max_top_n: int = 50) -> Reading:
    """Read one question on its own: subject, measure, filters, period, and follow-up markers;
    a "top N" larger than `max_top_n` is capped to it."""
    original = " ".join(question.replace("’", "'").split())[:MAX_QUESTION_CHARS]
    text = original.lower()
    values: dict[str, Any] = {"subject": _subject(text)}
    _measure(text, values)
    _ranking(text, values, max_top_n)
    _statuses(text, values)
    _filters(text, values)
    values["period"] = find_period(text, today)
    place_names(original, values)
    _references(text, values)
    return Reading(**{k: v for k, v in values.items() if v is not None and k in _READING_FIELDS})
