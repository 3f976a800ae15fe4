"""A query result as the rows the page may show: the first rows, capped by count and bytes."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from typing import Any, Final

from agent_service.providers.base import QueryResult

MAX_CELL_CHARS: Final = 200
"""A longer text value is cut (with an ellipsis): a table cell, not a document."""


def cell(value: Any) -> bool | int | float | str | None:
    """One value as JSON can carry it: numbers stay numbers, the rest becomes short text."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(bytes(value))} bytes>"
    text = str(value)
    return text if len(text) <= MAX_CELL_CHARS else text[: MAX_CELL_CHARS - 1] + "…"


def result_table(result: QueryResult, max_rows: int, max_bytes: int) -> dict[str, Any] | None:
    """The first rows of `result` within `max_rows` and `max_bytes` of JSON (None when off)."""
    if max_rows <= 0 or not result.columns:
        return None
    columns = [str(c) for c in result.columns]
    used = len(json.dumps(columns))
    rows: list[list[Any]] = []
    for raw in result.rows[:max_rows]:
        row = [cell(v) for v in raw]
        used += len(json.dumps(row, default=str)) + 1
        if used > max_bytes:
            break
        rows.append(row)
    return {
        "columns": columns,
        "rows": rows,
        "row_count": result.row_count,
        "capped": len(rows) < result.row_count,
    }
