"""Periods moved and paired: "the month before that", "and the year before?", "October vs
September". A move keeps the period's own unit (a month moves by a month, a quarter by a
quarter)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Final

from agent_service.providers.offline.period import MONTH_NAMES, Period, find_period, human_date

_UNITS: Final = ("day", "week", "month", "quarter", "year")
_BACK: Final = re.compile(
    r"\b(?:(day|week|month|quarter|year|one|period) (?:before|prior|earlier)"
    r"|before (?:that|it|this|then)|(?:the )?(?:previous|prior|preceding) (?:one|period))\b"
)
_FORWARD: Final = re.compile(
    r"\b(?:(day|week|month|quarter|year|one|period) (?:after|later)(?! \w+day)"
    r"|after (?:that|it|this|then)|(?:the )?(?:following|next) (?:one|period))\b"
)
_COMPARE: Final = re.compile(
    r"\b(?:compare[ds]?|comparison|compared|vs\.?|versus|against|difference between"
    r"|(?:more|less|higher|lower|better|worse) than"
    # "did we make more in September or October?": a choice between two periods
    r"|(?:more|less|higher|lower|better|worse|bigger|busier|which)\b(?=.*\bor\b))\b"
)
_SPLIT: Final = re.compile(r"\b(?:and|vs\.?|versus|to|with|against|than|or)\b(?=[^?]*?\w)")


def period_move(text: str) -> tuple[int, str | None] | None:
    """(steps, unit) when a follow-up moves the previous period ("the month before that" is
    (-1, "month"), "and the one after?" is (1, None)); None when it does not."""
    for pattern, steps in ((_BACK, -1), (_FORWARD, 1)):
        if found := pattern.search(text):
            unit = found[1] if found[1] in _UNITS else None
            return steps, unit
    return None


def asks_to_compare(text: str) -> bool:
    """Whether the question compares ("compare", "vs", "than", "difference between")."""
    return _COMPARE.search(text) is not None


def two_periods(text: str, today: date) -> tuple[Period, Period] | None:
    """The two periods a comparison names ("September vs October", "compare this month and last
    month"), in the order given; None unless it compares two distinct periods."""
    if not asks_to_compare(text):
        return None
    for found in _SPLIT.finditer(text):
        before, after = text[: found.start()], text[found.end() :]
        # "sept vs oct": a bare month next to the "vs" is a period, as "in sept" would be.
        last_word = (before.split() or [""])[-1]
        first = find_period(before, today) or find_period(f"in {last_word}", today)
        second = find_period(after, today) or find_period("in " + after.strip(), today)
        if first and second and (first.start, first.end) != (second.start, second.end):
            return first, second
    return None


def _unit_of(period: Period) -> str | None:
    start, end = date.fromisoformat(period.start), date.fromisoformat(period.end)
    if start == end:
        return "day"
    if start.weekday() == 0 and (end - start).days == 6:
        return "week"
    if start.day == 1 and (end + timedelta(days=1)).day == 1:
        months = (end.year - start.year) * 12 + end.month - start.month + 1
        if months == 1:
            return "month"
        if months == 3 and start.month in {1, 4, 7, 10}:
            return "quarter"
        if months == 12 and start.month == 1:
            return "year"
    if start.month == 1 and start.day == 1 and end.year == start.year:
        return "year"  # "this year" runs to today; the year before it is a whole year
    return None


def _month_start(day: date, by: int) -> date:
    index = day.year * 12 + day.month - 1 + by
    return date(index // 12, index % 12 + 1, 1)


def shift_period(period: Period, steps: int, unit: str | None = None) -> Period:
    """`period` moved by `steps` of its own unit (or of `unit`, when the question names one)."""
    start = date.fromisoformat(period.start)
    kind = unit or _unit_of(period)
    if kind == "day":
        day = start + timedelta(days=steps)
        return Period(day.isoformat(), day.isoformat(), f"on {human_date(day)}")
    if kind == "week":
        monday = start - timedelta(days=start.weekday()) + timedelta(weeks=steps)
        sunday = monday + timedelta(days=6)
        label = f"in the week of {human_date(monday)}"
        return Period(monday.isoformat(), sunday.isoformat(), label)
    if kind in {"month", "quarter", "year"}:
        size = {"month": 1, "quarter": 3, "year": 12}[kind]
        first = _month_start(start, 0)
        if kind == "quarter":
            first = date(first.year, (first.month - 1) // 3 * 3 + 1, 1)
        if kind == "year":
            first = date(first.year, 1, 1)
        first = _month_start(first, steps * size)
        last = _month_start(first, size) - timedelta(days=1)
        label = {
            "month": f"in {MONTH_NAMES[first.month - 1]} {first.year}",
            "quarter": f"in Q{(first.month - 1) // 3 + 1} {first.year}",
            "year": f"in {first.year}",
        }[kind]
        return Period(first.isoformat(), last.isoformat(), label)
    end = date.fromisoformat(period.end)
    length = (end - start).days + 1
    new_start, new_end = (
        start + timedelta(days=steps * length),
        end + timedelta(days=steps * length),
    )
    label = f"from {human_date(new_start)} to {human_date(new_end)}"
    return Period(new_start.isoformat(), new_end.isoformat(), label)
