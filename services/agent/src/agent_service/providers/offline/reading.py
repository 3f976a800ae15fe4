"""Reading one question on its own, by keyword and pattern: subject, measure, ranking, filters.

The result is a `Reading`: what the words say, before any follow-up merging (`offline_question`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import date
from typing import Any, Final

from agent_service.providers.offline.guessed_names import guess_names
from agent_service.providers.offline.measures import (
    Group,
    Metric,
    Order,
    Subject,
    has,
    read_measure,
    read_ranking,
)
from agent_service.providers.offline.names import find_names, place_names
from agent_service.providers.offline.period import Period, find_period
from agent_service.providers.offline.period_moves import asks_to_compare, period_move, two_periods
from agent_service.providers.offline.wording import normalise, unknown_words

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
    (r"inactive|former|gone|quit|no longer (?:with us|active|employed)", "inactive"),
    (r"in[ _-]?progress|ongoing|underway|being worked on", "in_progress"),
    (r"cancell?ed|cancell?ations?", "cancelled"),
    (r"completed?|finish(?:ed)?|done|closed", "completed"),
    (r"scheduled|upcoming|planned|booked", "scheduled"),
    (r"open|pending|outstanding|unfinished|not (?:yet )?(?:done|completed)", "open"),
    (r"active", "active"),
)
ORDINALS: Final[dict[str, int]] = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "last": -1,
}  # fmt: skip
_SUBJECT_WORDS: Final[tuple[tuple[Subject, str], ...]] = (
    ("technicians", "technicians?|techs?|employees?|staff|workers?|team members?|hires?|hired"
     "|plumbers?|electricians?|guys|crew|folks"
     "|specialt(?:y|ies)|hourly rates?|wages?"),
    ("customers", "customers?|clients?|accounts?"),
    ("jobs", "jobs?|work orders?|appointments?|visits?|service calls?|tasks?|revenue"
     "|earn(?:ed|ings)?|income|sales|billed|made|bring in|brought in|money|schedule|calendar"
     "|agenda"),
)  # fmt: skip
_HIRING: Final = (
    r"hired?|hires|hiring|joined|join|started|onboarded"
    r"|new (?:\w+ )?(?:techs?|technicians?|staff|employees?|hires?)"
)
_JOB_STATUSES: Final = frozenset({"scheduled", "in_progress", "completed", "cancelled", "open"})
# "my jobs", "do I have": the caller is not known to the provider, so these are not answered.
_SELF: Final = (
    r"my|mine|i (?:have|had|did|do|completed|finished|worked|earned|made|got)"
    r"|(?:do|did|have|am|will|should|was) i"
)
# A period named in a way no period parser understood ("last summer", "that week").
_LOOSE_PERIOD: Final = (
    r"(?:last|this|next|previous|past|current|that|coming|upcoming) (?:quarter|week|month|year"
    r"|season|summer|winter|spring|fall|autumn|weekend|holidays?)|(?:last|this|next) \w+day"
)
_UNASSIGNED: Final = (
    "unassigned|not assigned|without (?:a |any )?(?:technician|tech)"
    "|no (?:technician|tech) assigned|(?:nobody|no one|noone) (?:is |was )?assigned"
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
    hired: bool = False
    """The question is about hiring ("hired in 2025", "new techs"), so a period dates hires."""
    compare: Period | None = None
    """The second period of a comparison ("October vs September"); `period` is the first."""
    compares: bool = False
    """The question asks for a comparison ("how does that compare to last month?")."""
    move: tuple[int, str | None] | None = None
    """A follow-up moving the previous period: (steps, unit), e.g. (-1, "month")."""
    every_status: bool = False
    """The question asks for everyone or everything ("in total", "altogether")."""
    pronoun: bool = False
    """The question points at one person of the previous answer ("what's their rate?")."""
    averaged: bool = False
    """The question asks for an average ("average", "typical")."""
    self_ref: bool = False
    """The question is about the asker ("my jobs", "do I have"), whom the provider can't know."""
    loose_period: bool = False
    """A period is named ("last summer", "that week") but none could be read."""
    unknown: tuple[str, ...] = ()
    """Words nothing in the question accounts for; a data question with any is not answered."""

    def has_filters(self) -> bool:
        """Whether the question narrows or reshapes anything on its own."""
        return any(
            (self.statuses, self.specialty, self.segment, self.city, self.technician,
             self.customer, self.person, self.period, self.unassigned, self.overdue,
             self.group, self.metric not in {None, "list"}, self.order, self.without_jobs,
             self.move, self.compare)
        )  # fmt: skip


_READING_FIELDS: Final = frozenset(f.name for f in fields(Reading))


def _subject(text: str) -> Subject | None:
    first: dict[Subject, int] = {}
    for subject, pattern in _SUBJECT_WORDS:
        if found := re.search(rf"\b(?:{pattern})\b", text):
            first[subject] = found.start()
    # The first subject named is what the question is about ("jobs for customer X").
    ordered = sorted(first.items(), key=lambda item: item[1])
    return ordered[0][0] if ordered else None


def _statuses(text: str, values: dict[str, Any]) -> None:
    statuses = [status for pattern, status in _STATUS_WORDS if has(text, pattern)]
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
    if has(text, r"residential|homeowners?|households?|homes?"):
        values["segment"] = "residential"
    elif has(text, r"commercial|business(?:es)?"):
        values["segment"] = "commercial"
    values["unassigned"] = has(text, _UNASSIGNED)
    values["overdue"] = has(text, r"overdue|late|past due|behind schedule")
    values["without_jobs"] = has(
        text, r"(?:no|without any|without|zero) jobs|(?:never|not) (?:booked|had a job)|idle"
    )


def _references(text: str, values: dict[str, Any]) -> None:
    """Pointers back at the previous answer: "the first one", "#3", "them", "and ...?"."""
    if found := _ORDINAL.search(text):
        word = re.sub(r"(?<=\d)(?:st|nd|rd|th)$", "", found[1])
        values["ordinal"] = int(word) if word.isdigit() else ORDINALS[word]
    elif (found := re.search(r"(?:#|\bnumber\s+)(\d{1,2})\b", text)) and not values.get("metric"):
        values["ordinal"] = int(found[1])
    values["them"] = has(
        text, r"them|those|these|they|ones|that list|the same|(?:of|from) (?:that|it|this)"
    )
    values["follow_up"] = bool(_FOLLOW_UP_START.match(text) or values["them"])


def read_question(question: str, today: date, max_top_n: int = 50) -> Reading:
    """Read one question on its own: subject, measure, filters, period, and follow-up markers;
    a "top N" larger than `max_top_n` is capped to it."""
    original = normalise(question[:MAX_QUESTION_CHARS])
    text = original.lower()
    values: dict[str, Any] = {"subject": _subject(text)}
    read_measure(text, values)
    read_ranking(text, values, max_top_n)
    _statuses(text, values)
    _filters(text, values)
    values["period"] = find_period(text, today)
    if pair := two_periods(text, today):
        values["period"], values["compare"] = pair
    values["compares"] = asks_to_compare(text)
    values["move"] = None if values["period"] else period_move(text)
    values["hired"] = values.get("order") == "hired_on" or has(text, _HIRING)
    found_names = [name for _, name in find_names(original)]
    guessed = guess_names(text, found_names)
    place_names(original, values, guessed)
    _references(text, values)
    if values.get("subject") is None and (
        set(values["statuses"]) & _JOB_STATUSES
        or values["unassigned"]
        or values["overdue"]
        or re.search(_SCHEDULED_AS_VERB, text)
    ):
        values["subject"] = "jobs"  # "what's scheduled next week?", "anything overdue?"
    if values.get("subject") is None and {"on_leave", "inactive"} & set(values["statuses"]):
        values["subject"] = "technicians"  # "who's on leave?": only technicians take leave
    if (
        values.get("order") == "hired_on"
        and not values.get("descending", True)
        and not values["statuses"]
        and has(text, r"with us|here|still|currently|current|remaining")
    ):
        values["statuses"] = ("current",)  # "with us the longest": not someone who has left
    if values.get("metric") in {None, "list"} and has(
        text, r"(?:\w+'s|their|his|her) (?:hourly |pay )?rate|(?:rate|rates) (?:of pay|for \w+)"
    ):
        values.update(subject="technicians", metric="rate_avg")  # "Quinn Morgan's rate?"
    values["every_status"] = has(
        text, r"in total|altogether|all together|overall|all of them|everyone|everybody|all in all"
    )
    values["pronoun"] = has(text, r"their|his|her|he|she|him|that person|this person")
    values["averaged"] = has(text, r"average|avg|mean|typical|typically")
    values["self_ref"] = has(text, _SELF)
    values["loose_period"] = values["period"] is None and has(text, _LOOSE_PERIOD)
    values["unknown"] = tuple(unknown_words(text, found_names + [n for _, n in guessed]))
    return Reading(**{k: v for k, v in values.items() if v is not None and k in _READING_FIELDS})
