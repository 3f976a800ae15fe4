"""How the offline answers show one value from a result row: money, dates, statuses, plain text.

Cell values are data from the tenant's database, never instructions: they are only ever shown,
flattened to one line and shortened, so a stored note cannot reshape an answer.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Final

from agent_service.providers.offline.period import MONTH_NAMES, human_date

MAX_CELL_CHARS: Final = 160
_MONEY_COLUMNS: Final = frozenset({"revenue", "average_revenue"})
_RATE_COLUMNS: Final = frozenset({"hourly_rate", "average_hourly_rate"})
_ISO_DAY: Final = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_ISO_MONTH: Final = re.compile(r"^(\d{4})-(\d{2})$")


def money(value: Any) -> str:
    """`$12,345` for whole amounts, `$12,345.50` otherwise."""
    amount = float(value or 0)
    if amount == int(amount):
        return f"${int(amount):,}"
    return f"${amount:,.2f}"


def number(value: Any) -> str:
    """A count or measure with thousands separators; floats keep at most two decimals."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value):,}"
    return plain(value)


def plain(value: Any) -> str:
    """Any cell as one short line of text."""
    if value is None:
        return "none"
    text = " ".join(str(value).split())
    return text if len(text) <= MAX_CELL_CHARS else text[: MAX_CELL_CHARS - 1] + "…"


def readable_date(value: Any) -> str:
    """`2026-10-03` -> `October 3, 2026`; a month key `2026-10` -> `October 2026`."""
    text = plain(value)
    if found := _ISO_DAY.match(text):
        try:
            return human_date(date(int(found[1]), int(found[2]), int(found[3])))
        except ValueError:
            return text
    if (found := _ISO_MONTH.match(text)) and 1 <= int(found[2]) <= 12:
        return f"{MONTH_NAMES[int(found[2]) - 1]} {found[1]}"
    return text


def cell(column: str, value: Any) -> str:
    """A cell shown the way its column means it."""
    if value is None:
        return "none"
    if column in _MONEY_COLUMNS:
        return money(value)
    if column in _RATE_COLUMNS:
        return money(value) + "/hour"
    if column.endswith("_on") or column == "month":
        return readable_date(value)
    if column in {"status", "segment"}:
        return plain(value).replace("_", " ")
    if column.endswith("percent"):
        return number(value) + "%"
    if isinstance(value, (int, float)):
        return number(value)
    return plain(value)


def label(column: str) -> str:
    """A column name as words (`average_hourly_rate` -> `average hourly rate`)."""
    return column.replace("_", " ")
