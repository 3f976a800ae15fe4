"""Date phrases from a table, relative to the demo's fixed today (2026-11-15), never the clock."""

from __future__ import annotations

from datetime import date

import pytest

from agent_service.providers.offline.period import find_period

TODAY = date(2026, 11, 15)


@pytest.mark.parametrize(
    ("text", "start", "end", "label"),
    [
        ("jobs today", "2026-11-15", "2026-11-15", "today (November 15, 2026)"),
        ("jobs yesterday", "2026-11-14", "2026-11-14", "yesterday"),
        ("jobs tomorrow", "2026-11-16", "2026-11-16", "tomorrow"),
        ("this week", "2026-11-09", "2026-11-15", "this week"),
        ("last week", "2026-11-02", "2026-11-08", "last week"),
        ("next week", "2026-11-16", "2026-11-22", "next week"),
        ("revenue this month", "2026-11-01", "2026-11-30", "this month (November)"),
        ("revenue last month", "2026-10-01", "2026-10-31", "last month (October 2026)"),
        ("this year", "2026-01-01", "2026-11-15", "this year (2026)"),
        ("last year", "2025-01-01", "2025-12-31", "last year (2025)"),
        ("in 2026", "2026-01-01", "2026-12-31", "in 2026"),
        ("since 2020", "2020-01-01", "2026-11-15", "since 2020"),
        ("in october", "2026-10-01", "2026-10-31", "in October 2026"),
        ("in december", "2025-12-01", "2025-12-31", "in December 2025"),
        ("february 2024", "2024-02-01", "2024-02-29", "in February 2024"),
        ("since june", "2026-06-01", "2026-11-15", "since June 2026"),
        ("on october 5", "2026-10-05", "2026-10-05", "on October 5, 2026"),
        ("on 2026-03-09", "2026-03-09", "2026-03-09", "on March 9, 2026"),
        ("in q3", "2026-07-01", "2026-09-30", "in Q3 2026"),
        ("third quarter 2025", "2025-07-01", "2025-09-30", "in Q3 2025"),
        ("last 30 days", "2026-10-17", "2026-11-15", "in the last 30 days"),
        ("past two weeks", "2026-11-02", "2026-11-15", "in the last 2 weeks"),
        (
            "between january and march",
            "2026-01-01",
            "2026-03-31",
            "from January 2026 to March 2026",
        ),
        (
            "from november to february",
            "2025-11-01",
            "2026-02-28",
            "from November 2025 to February 2026",
        ),
        ("in may", "2026-05-01", "2026-05-31", "in May 2026"),
    ],
)
def test_period_phrases(text: str, start: str, end: str, label: str) -> None:
    period = find_period(text, TODAY)
    assert period is not None
    assert (period.start, period.end, period.label) == (start, end, label)


@pytest.mark.parametrize(
    "text",
    ["may i see the jobs", "how many jobs", "jobs on 2026-02-30", "the mayor of denver", "decent"],
)
def test_no_period_where_none_is_named(text: str) -> None:
    assert find_period(text, TODAY) is None


def test_the_day_is_the_one_given_not_the_clock() -> None:
    period = find_period("this month", date(2030, 2, 3))
    assert period is not None and (period.start, period.end) == ("2030-02-01", "2030-02-28")
