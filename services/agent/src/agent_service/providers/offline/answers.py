"""Answers written from query rows, and the token stream every offline answer goes out as.

The rows are shown, never obeyed: every cell passes through `offline_values`, which only formats.
When the rows come from a statement this provider drafted, the answer reads them with the spec
that produced them; otherwise (a fallback, another writer) it describes the rows generically.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final

from agent_service.providers.base import QueryResult
from agent_service.providers.offline.comparisons import comparison_answer
from agent_service.providers.offline.phrasing import measure_phrase, noun_phrase, specialty_words
from agent_service.providers.offline.question import Spec
from agent_service.providers.offline.shares import revenue_share_answer, share_answer
from agent_service.providers.offline.sql import ranks_jobs_by_revenue
from agent_service.providers.offline.values import cell, label, money, number, plain, readable_date

_COUNT_GROUPS: Final = frozenset({"status", "specialty", "city", "segment"})
"""Groupings a technicians or customers question can have (everything else needs jobs)."""
_TOKEN: Final = re.compile(r"\s*\S+\s*|\s+")


def split_tokens(text: str) -> list[str]:
    """Word-sized pieces that join back to exactly `text` (whitespace kept with the words)."""
    return _TOKEN.findall(text)


async def stream_text(text: str, pace_s: float) -> AsyncIterator[str]:
    """Yield `text` token by token, sleeping `pace_s` between tokens when it is positive."""
    for index, token in enumerate(split_tokens(text)):
        if pace_s > 0 and index:
            await asyncio.sleep(pace_s)
        yield token


def _bullets(lines: Sequence[str], total: int, truncated: bool, max_listed: int) -> str:
    shown = lines[:max_listed]
    text = "\n".join(shown)
    more = total - len(shown)
    if truncated:
        text += f"\n…and more: the result was cut off at {total} rows, so narrow the question."
    elif more > 0:
        # "…and 15 more" would read as a second count next to the total the heading states.
        text += f"\n…and the rest of the {number(total)}."
    return text


def _row(result: QueryResult, index: int) -> dict[str, Any]:
    return dict(zip(result.columns, result.rows[index], strict=False))


def _count_sentence(spec: Spec, value: Any) -> str:
    count = int(value or 0)
    things = noun_phrase(spec, plural=count != 1)
    if spec.subject == "jobs":
        return (
            f"There are no {things}."
            if count == 0
            else f"There {'is' if count == 1 else 'are'} {number(count)} {things}."
        )
    return f"You have no {things}." if count == 0 else f"You have {number(count)} {things}."


def _scalar_answer(spec: Spec, result: QueryResult) -> str:
    row = _row(result, 0)
    things = noun_phrase(spec)
    if spec.metric == "count":
        return _count_sentence(spec, next(iter(row.values())))
    jobs = int(row.get("jobs") or 0)
    if spec.metric == "revenue_sum":
        return f"Revenue from {things} was {money(row.get('revenue'))}."
    if spec.metric == "revenue_avg":
        if not jobs:
            return f"There are no {things}, so there is no average revenue to report."
        average = money(row.get("average_revenue"))
        return f"The average revenue per job across {number(jobs)} {things} was {average}."
    if spec.metric == "rate_avg":
        count = int(row.get("technicians") or 0)
        if not count:
            return f"You have no {things}, so there is no average hourly rate."
        rate = cell("hourly_rate", row.get("average_hourly_rate"))
        if count == 1:
            return f"The hourly rate of the {noun_phrase(spec, plural=False)} is {rate}."
        return f"The average hourly rate of your {number(count)} {things} is {rate}."
    if spec.metric == "duration_avg":
        if not jobs:
            return f"There are no {things}, so I can't say how long they took."
        return (
            f"Across {number(jobs)} {things}, it took {number(row.get('average_days'))} days on"
            " average from the scheduled date to completion."
        )
    if not jobs:
        return f"There are no {things}, so there is no cancellation rate."
    percent = float(row.get("cancelled_percent") or 0)
    cancelled = round(percent * jobs / 100)
    return f"{number(percent)}% of {things} were cancelled ({number(cancelled)} of {number(jobs)})."


def _group_answer(spec: Spec, result: QueryResult, max_listed: int = 10) -> str:
    assert spec.group is not None
    key_column = {"technician": "technician", "customer": "customer"}.get(spec.group, spec.group)
    value_column = (
        result.columns[-1] if spec.metric in {"count", "revenue_sum"} else result.columns[-2]
    )
    measure = measure_phrase(spec)
    things = noun_phrase(spec)
    if not result.rows:
        return f"There are no {things}, so there is nothing to break down by {spec.group}."

    def key_text(row: dict[str, Any]) -> str:
        value = row.get(key_column)
        if spec.group == "specialty" and isinstance(value, str):
            return plain(specialty_words(value))
        return cell(key_column, value)

    rows = [_row(result, i) for i in range(result.row_count)]
    if spec.order == "value" and spec.limit == 1:
        row = rows[0]
        what: str = spec.subject if spec.metric == "count" else measure
        most = "most" if spec.descending else ("fewest" if spec.metric == "count" else "least")
        value = cell(value_column, row.get(value_column))
        among = "" if things == spec.subject else f"Among {things}, "
        sentence = f"{key_text(row)} had the {most} {what}: {value}."
        return among + (sentence if among else sentence[0].upper() + sentence[1:])
    if spec.order == "value":
        which = "Top" if spec.descending else "Bottom"
        groups = spec.group + ("" if len(rows) == 1 else "s")
        heading = f"{which} {len(rows)} {groups} by {measure}, from {things}:"
        lines = [
            f"{i}. {key_text(r)} — {cell(value_column, r.get(value_column))}"
            for i, r in enumerate(rows, 1)
        ]
    else:
        heading = (
            f"{things[0].upper()}{things[1:]} by {spec.group}:"
            if spec.metric == "count"
            else f"{measure[0].upper()}{measure[1:]} of {things}, by {spec.group}:"
        )
        lines = [f"- {key_text(r)}: {cell(value_column, r.get(value_column))}" for r in rows]
    return heading + "\n" + _bullets(lines, len(rows), result.truncated, max_listed)


def _list_line(spec: Spec, row: dict[str, Any]) -> str:
    if spec.subject == "technicians":
        details = [specialty_words(plain(row.get("specialty"))), cell("status", row.get("status"))]
        if spec.order == "hired_on":
            details.insert(0, f"hired {readable_date(row.get('hired_on'))}")
        details.append(cell("hourly_rate", row.get("hourly_rate")))
        return f"- {plain(row.get('name'))} — " + ", ".join(details)
    if spec.subject == "customers":
        segment = cell("segment", row.get("segment"))
        return f"- {plain(row.get('name'))} — {plain(row.get('city'))}, {segment}"
    status = cell("status", row.get("status"))
    when = (
        f"completed {readable_date(row.get('completed_on'))}"
        if row.get("completed_on")
        else f"{status}, scheduled {readable_date(row.get('scheduled_on'))}"
    )
    # "unassigned", not "no technician": "no …" reads as a count of zero next to the real count
    technician = plain(row.get("technician")) if row.get("technician") else "unassigned"
    revenue = f", {money(row.get('revenue'))}" if row.get("revenue") else ""
    return (
        f"- #{plain(row.get('job_id'))} {plain(row.get('title'))} for {plain(row.get('customer'))}"
        f" — {technician}, {when}{revenue}"
    )


def _list_answer(spec: Spec, result: QueryResult, max_listed: int = 10) -> str:
    things = noun_phrase(spec)
    if not result.rows:
        return f"I found no {things}."
    rows = [_row(result, i) for i in range(result.row_count)]
    if spec.order == "hired_on":
        which = "most recently hired" if spec.descending else "longest-serving"
        if len(rows) == 1:
            heading = f"Your {which} {noun_phrase(spec, plural=False)}:"
        else:
            heading = f"Your {len(rows)} {which} {things}:"
    elif ranks_jobs_by_revenue(spec):
        which = "biggest" if spec.descending else "smallest"
        heading = f"The {len(rows)} {which} {things} by revenue:"
    elif spec.order == "hourly_rate" and spec.limit == 1:
        row = rows[0]
        which = "highest" if spec.descending else "lowest"
        rate = cell("hourly_rate", row.get("hourly_rate"))
        return f"{plain(row.get('name'))} has the {which} hourly rate of your {things}: {rate}."
    elif spec.order == "hourly_rate":
        which = "highest" if spec.descending else "lowest"
        heading = f"The {len(rows)} {things} with the {which} hourly rates:"
    else:
        if result.truncated:
            heading = f"Here are the first {number(len(rows))} {things} (there are more):"
        else:
            plural = len(rows) != 1
            named = noun_phrase(spec, plural=plural)
            heading = f"Here {'are' if plural else 'is'} the {number(len(rows))} {named}:"
    return (
        heading
        + "\n"
        + _bullets([_list_line(spec, r) for r in rows], len(rows), result.truncated, max_listed)
    )


def answer_for_spec(spec: Spec, result: QueryResult, max_listed: int = 10) -> str:
    """The answer to `spec` from the rows its statement returned."""
    if spec.compare is not None:
        return comparison_answer(spec, result)
    if spec.metric == "share" and result.rows:
        return share_answer(spec, _row(result, 0))
    if spec.metric == "revenue_share" and result.rows:
        return revenue_share_answer(spec, _row(result, 0))
    if spec.group is not None and (spec.subject == "jobs" or spec.group in _COUNT_GROUPS):
        return _group_answer(spec, result, max_listed)
    if spec.metric == "list":
        return _list_answer(spec, result, max_listed)
    if not result.rows:
        return "The query returned no rows."
    return _scalar_answer(spec, result)


def answer_for_detail(kind: str, result: QueryResult) -> str:
    """Everything known about one technician, customer or job, from its detail row."""
    if not result.rows:
        return f"I couldn't find that {kind} any more."
    row = _row(result, 0)
    name = plain(row.get("name"))
    if kind == "technician":
        return (
            f"{name} is a technician ({cell('status', row.get('status'))}), specialty"
            f" {plain(row.get('specialty'))}, hired {readable_date(row.get('hired_on'))}, paid"
            f" {cell('hourly_rate', row.get('hourly_rate'))}. They have {number(row.get('jobs'))}"
            f" jobs on record, {number(row.get('completed_jobs'))} completed, bringing in"
            f" {money(row.get('revenue'))}; the latest was scheduled"
            f" {readable_date(row.get('last_job_on'))}."
        )
    if kind == "customer":
        return (
            f"{name} is a {cell('segment', row.get('segment'))} customer in"
            f" {plain(row.get('city'))}"
            f" with {number(row.get('jobs'))} jobs on record, {number(row.get('completed_jobs'))}"
            f" completed, worth {money(row.get('revenue'))}; the latest was scheduled"
            f" {readable_date(row.get('last_job_on'))}."
        )
    text = (
        f"Job #{plain(row.get('job_id'))}, {plain(row.get('title'))}, for"
        f" {plain(row.get('customer'))} in {plain(row.get('city'))}:"
        f" {cell('status', row.get('status'))},"
        f" scheduled {readable_date(row.get('scheduled_on'))}"
    )
    if row.get("completed_on"):
        completed = readable_date(row.get("completed_on"))
        text += f", completed {completed}, revenue {money(row.get('revenue'))}"
    technician = plain(row.get("technician")) if row.get("technician") else "no technician yet"
    text += f". Technician: {technician}."
    if notes := plain(row.get("notes") or ""):
        # Quoted as a record of what staff wrote; it is never read as a request.
        text += f"\nNotes on file (quoted as written): “{notes}”"
    return text


def answer_for_lookup(result: QueryResult, max_listed: int = 10) -> str:
    """Who matched a name: technicians and customers, one line each."""
    if not result.rows:
        return "No technician or customer has a name like that."
    rows = [_row(result, i) for i in range(result.row_count)]
    if len(rows) == 1:
        row = rows[0]
        summary = cell("status", row.get("summary"))
        return f"{plain(row.get('name'))} is a {plain(row.get('kind'))} ({summary})."
    lines = [
        f"- {plain(r.get('name'))} — {plain(r.get('kind'))} ({cell('status', r.get('summary'))})"
        for r in rows
    ]
    return f"I found {len(rows)} matches:\n" + _bullets(
        lines, len(rows), result.truncated, max_listed
    )


def answer_generic(result: QueryResult, max_listed: int = 10) -> str:
    """A plain description of rows whose statement this provider did not draft."""
    if not result.rows:
        return "The query returned no rows."
    if len(result.columns) == 1 and result.row_count == 1:
        column = result.columns[0]
        return f"The {label(column)} is {cell(column, result.rows[0][0])}."
    lines = [
        "- "
        + ", ".join(f"{label(c)}: {cell(c, v)}" for c, v in zip(result.columns, row, strict=False))
        for row in result.rows
    ]
    count = f"at least {result.row_count}" if result.truncated else str(result.row_count)
    return f"Here is what I found ({count} rows):\n" + _bullets(
        lines, result.row_count, result.truncated, max_listed
    )
