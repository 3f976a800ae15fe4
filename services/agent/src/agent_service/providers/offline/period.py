"""Date ranges a question names ("in October", "last month", "in 2026"), relative to a fixed day.

The offline provider never reads the wall clock: "this month" means the month of the `today` it was
built with (the demo's `DEMO_TODAY` by default), so answers are reproducible.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

MONTHS: Final[dict[str, int]] = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4,
    "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8,
    "september": 9, "sept": 9, "sep": 9, "october": 10, "oct": 10, "november": 11, "nov": 11,
    "december": 12, "dec": 12,
}  # fmt: skip
MONTH_NAMES: Final = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
_NUMBERS: Final[dict[str, int]] = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "ninety": 90,
}  # fmt: skip
_MONTH_RE: Final = "|".join(sorted(MONTHS, key=len, reverse=True))
# "may" is also a verb, so a bare month name only counts after a preposition or before a day/year.
_MONTH_PHRASE: Final = re.compile(
    rf"(?:\b(?:in|of|during|for|since|from|on|last|this)\s+)?\b({_MONTH_RE})\b\.?"
    r"(?:\s+(\d{1,2})(?:st|nd|rd|th)?\b)?(?:,?\s+(\d{4})\b)?"
)
_MONTH_SPAN: Final = re.compile(
    rf"\b(?:between|from)\s+({_MONTH_RE})\b\.?(?:\s+(\d{{4}}))?\s+(?:and|to|through|until|-)\s+"
    rf"({_MONTH_RE})\b\.?(?:,?\s+(\d{{4}}))?"
)
# "July through September": a span without "between"/"from" needs a connective that is no list.
_MONTH_THROUGH: Final = re.compile(
    rf"\b({_MONTH_RE})\b\.?(?:\s+(\d{{4}}))?\s*(?:through|thru|till|until|-|–)\s*"
    rf"({_MONTH_RE})\b\.?(?:,?\s+(\d{{4}}))?"
)
_ISO_DAY: Final = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_LAST_N: Final = re.compile(
    r"\b(?:last|past|previous)\s+(\d{1,3}|" + "|".join(_NUMBERS) + r")\s+(days?|weeks?|months?)\b"
)
_QUARTER: Final = re.compile(
    r"\b(?:q([1-4])|(first|second|third|fourth) quarter)(?:\s+(?:of\s+)?(\d{4}))?\b"
)
_YEAR: Final = re.compile(r"\b(?:in|of|during|for|since)?\s*\b(20\d{2})\b")


@dataclass(frozen=True, slots=True)
class Period:
    """An inclusive range of ISO dates and how to say it ("in October 2026")."""

    start: str
    end: str
    label: str


def human_date(day: date) -> str:
    """`October 3, 2026`: the one date format the offline answers use."""
    return f"{MONTH_NAMES[day.month - 1]} {day.day}, {day.year}"


def _month(year: int, month: int, label: str | None = None) -> Period:
    start = date(year, month, 1)
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    text = label or f"in {MONTH_NAMES[month - 1]} {year}"
    return Period(start.isoformat(), (nxt - timedelta(days=1)).isoformat(), text)


def _day(day: date, label: str | None = None) -> Period:
    return Period(day.isoformat(), day.isoformat(), label or f"on {human_date(day)}")


def _year(year: int, label: str | None = None) -> Period:
    return Period(f"{year}-01-01", f"{year}-12-31", label or f"in {year}")


def _week(monday: date, label: str) -> Period:
    return Period(monday.isoformat(), (monday + timedelta(days=6)).isoformat(), label)


def _shift_month(year: int, month: int, by: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + by
    return index // 12, index % 12 + 1


def _relative(text: str, today: date) -> Period | None:
    """Periods named relative to today: today, this/last/next week, month, year, last N days."""
    monday = today - timedelta(days=today.weekday())
    fixed: tuple[tuple[str, Period], ...] = (
        ("today", _day(today, f"today ({human_date(today)})")),
        ("yesterday", _day(today - timedelta(days=1), "yesterday")),
        ("tomorrow", _day(today + timedelta(days=1), "tomorrow")),
        ("this week", _week(monday, "this week")),
        ("last week", _week(monday - timedelta(days=7), "last week")),
        ("next week", _week(monday + timedelta(days=7), "next week")),
    )
    for phrase, period in fixed:
        if re.search(rf"\b{phrase}\b", text):
            return period
    if re.search(r"\b(this|current) month\b", text):
        return _month(today.year, today.month, f"this month ({MONTH_NAMES[today.month - 1]})")
    for words, by, name in (("last|previous|past", -1, "last month"), ("next", 1, "next month")):
        if re.search(rf"\b(?:{words}) month\b", text):
            year, month = _shift_month(today.year, today.month, by)
            return _month(year, month, f"{name} ({MONTH_NAMES[month - 1]} {year})")
    quarter = (today.month - 1) // 3
    for words, by in (("this|current", 0), ("last|previous|past", -1), ("next", 1)):
        if re.search(rf"\b(?:{words}) quarter\b", text):
            year, first = _shift_month(today.year, quarter * 3 + 1, by * 3)
            _, last = _shift_month(today.year, quarter * 3 + 3, by * 3)
            opening, closing = _month(year, first), _month(year, last)
            return Period(opening.start, closing.end, f"in Q{(first - 1) // 3 + 1} {year}")
    if re.search(r"\b(this year|year to date|ytd|so far this year)\b", text):
        return Period(f"{today.year}-01-01", today.isoformat(), f"this year ({today.year})")
    if re.search(r"\b(last|previous|past) year\b", text):
        return _year(today.year - 1, f"last year ({today.year - 1})")
    if found := _LAST_N.search(text):
        count = int(found[1]) if found[1].isdigit() else _NUMBERS[found[1]]
        unit = found[2].rstrip("s")
        days = count * {"day": 1, "week": 7, "month": 30}[unit]
        start = today - timedelta(days=max(days, 1) - 1)
        return Period(start.isoformat(), today.isoformat(), f"in the last {count} {unit}s")
    return None


def _month_span(text: str, today: date) -> Period | None:
    """ "between January and March", "from June to August 2026": whole months, inclusive."""
    found = _MONTH_SPAN.search(text) or _MONTH_THROUGH.search(text)
    if not found:
        return None
    last_year = int(found[4]) if found[4] else None
    first_month, last_month = MONTHS[found[1]], MONTHS[found[3]]
    if last_year is None:
        last_year = today.year - (last_month > today.month)
    first_year = int(found[2]) if found[2] else last_year - (first_month > last_month)
    start, end = _month(first_year, first_month), _month(last_year, last_month)
    if start.start > end.end:
        return None
    first_name, last_name = MONTH_NAMES[first_month - 1], MONTH_NAMES[last_month - 1]
    label = f"from {first_name} {first_year} to {last_name} {last_year}"
    return Period(start.start, end.end, label)


def find_period(text: str, today: date) -> Period | None:
    """The first date range `text` (lower-cased) names, or None; a month without a year is the
    latest one not after today's month."""
    if relative := _relative(text, today):
        return relative
    if span := _month_span(text, today):
        return span
    if iso_day := _ISO_DAY.search(text):
        try:
            return _day(date(int(iso_day[1]), int(iso_day[2]), int(iso_day[3])))
        except ValueError:
            return None
    if quarter := _QUARTER.search(text):
        number = (
            int(quarter[1])
            if quarter[1]
            else ("first", "second", "third", "fourth").index(quarter[2]) + 1
        )
        year = int(quarter[3]) if quarter[3] else today.year
        first = _month(year, number * 3 - 2)
        last = _month(year, number * 3)
        return Period(first.start, last.end, f"in Q{number} {year}")
    for found in _MONTH_PHRASE.finditer(text):
        name, day_text, year_text = found[1], found[2], found[3]
        has_preposition = found[0].split()[0] in {
            "in",
            "of",
            "during",
            "for",
            "since",
            "from",
            "on",
            "last",
            "this",
        }
        if name == "may" and not (has_preposition or day_text or year_text):
            continue
        if name in {
            "mar",
            "jun",
            "jul",
            "dec",
            "sep",
            "oct",
            "nov",
            "jan",
            "feb",
            "apr",
            "aug",
        } and not (has_preposition or day_text or year_text):
            continue
        month = MONTHS[name]
        year = int(year_text) if year_text else today.year - (month > today.month)
        since = found[0].startswith("since")
        if day_text:
            try:
                day = date(year, month, int(day_text))
            except ValueError:
                return None
            if since:
                return Period(day.isoformat(), today.isoformat(), f"since {human_date(day)}")
            return _day(day)
        period = _month(year, month)
        if since:
            return Period(period.start, today.isoformat(), f"since {MONTH_NAMES[month - 1]} {year}")
        return period
    if year_match := _YEAR.search(text):
        year = int(year_match[1])
        if "since" in year_match[0]:
            return Period(f"{year}-01-01", today.isoformat(), f"since {year}")
        return _year(year)
    return None
