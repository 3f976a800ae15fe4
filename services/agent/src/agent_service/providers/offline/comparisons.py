"""Two periods side by side: "revenue in September vs October", "and how does that compare to
last month?". One statement keys each row by its period; the answer states both values."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Final

from agent_service.providers.base import QueryResult
from agent_service.providers.offline.phrasing import measure_phrase, noun_phrase
from agent_service.providers.offline.question import Spec
from agent_service.providers.offline.sql import build_sql, job_date_column
from agent_service.providers.offline.values import cell, number

_ISO: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_VALUE_COLUMNS: Final[dict[str, str]] = {
    "count": "jobs",
    "revenue_sum": "revenue",
    "revenue_avg": "average_revenue",
    "duration_avg": "average_days",
    "cancel_rate": "cancelled_percent",
}


def _range(column: str, start: str, end: str) -> str:
    if not (_ISO.match(start) and _ISO.match(end)):
        raise ValueError("malformed period")
    return f"{column} BETWEEN '{start}' AND '{end}'"


def comparison_sql(spec: Spec, today_iso: str) -> str:
    """The measure of `spec` for its period and its `compare` period, one row per period."""
    if spec.period is None or spec.compare is None or spec.metric not in _VALUE_COLUMNS:
        raise ValueError("no comparison for this question")
    whole = replace(spec, period=None, compare=None, group=None, order="", limit=None)
    statement = build_sql(whole, today_iso)
    column = job_date_column(spec)
    first = _range(column, spec.period.start, spec.period.end)
    second = _range(column, spec.compare.start, spec.compare.end)
    key = (
        f"CASE WHEN {first} THEN '{spec.period.start}' WHEN {second} THEN"
        f" '{spec.compare.start}' END AS period"
    )
    head, _, rest = statement.partition(" FROM ")
    condition = f"({first} OR {second})"
    rest = (
        rest.replace(" WHERE ", f" WHERE {condition} AND ", 1)
        if " WHERE " in rest
        else f"{rest} WHERE {condition}"
    )
    return f"SELECT {key}, {head.removeprefix('SELECT ')} FROM {rest} GROUP BY period"


def _name(label: str) -> str:
    return label.removeprefix("in ").removeprefix("on ")


def comparison_answer(spec: Spec, result: QueryResult) -> str:
    """ "Revenue from completed jobs: October 2026 $38,852; September 2026 $16,192 (...)."."""
    assert spec.period is not None
    assert spec.compare is not None
    column = _VALUE_COLUMNS[spec.metric]
    rows = [dict(zip(result.columns, row, strict=False)) for row in result.rows]
    by_start = {str(r.get("period")): r for r in rows}
    zero_is_value = spec.metric in {"count", "revenue_sum"}
    values: list[float | None] = []
    parts: list[str] = []
    for period in (spec.period, spec.compare):
        row: dict[str, Any] = by_start.get(period.start, {})
        value = row.get(column)
        if value is None and zero_is_value:
            value = 0
        values.append(None if value is None else float(value))
        shown = "no jobs" if value is None else cell(column, value)
        parts.append(f"{_name(period.label)}: {shown}")
    things = noun_phrase(replace(spec, period=None, compare=None))
    subject = things if spec.metric == "count" else f"{measure_phrase(spec)} of {things}"
    text = f"{subject[0].upper()}{subject[1:]} — " + "; ".join(parts) + "."
    first, second = values
    if first is not None and second is not None:
        if first == second:
            text += " They are the same."
        else:
            higher = spec.period if first > second else spec.compare
            low = min(first, second)
            change = f" by {number(round(abs(first - second) / low * 100))}%" if low else ""
            name = _name(higher.label)
            text += f" {name[0].upper()}{name[1:]} was higher{change}."
    return text
