"""The measure a data question asks for: what is counted or summed, grouped and ranked.

Part of reading one question (`offline_reading`): these helpers fill the reading's values from the
words that name a metric ("revenue", "average", "how long"), a grouping ("by month") or a ranking
("top 5", "busiest", "newest hires").
"""

from __future__ import annotations

import re
from typing import Any, Final, Literal

Subject = Literal["technicians", "customers", "jobs"]
Metric = Literal[
    "count",
    "list",
    "revenue_sum",
    "revenue_avg",
    "rate_avg",
    "duration_avg",
    "cancel_rate",
    "share",
    "revenue_share",
]
Group = Literal["month", "status", "specialty", "technician", "customer", "segment", "city"]
Order = Literal["", "value", "hourly_rate", "hired_on"]

_NUMBER_WORDS: Final[dict[str, int]] = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "twenty": 20,
}  # fmt: skip
_NUMBER: Final = r"(\d{1,2}|" + "|".join(_NUMBER_WORDS) + ")"
_REVENUE: Final = (
    "revenue|earn(?:ed|ings|s)?|income|sales|billed|made|make|bring in|brought in|money"
    "|job values?|average value|ticket size|average ticket|tickets?"
)
_RANKED: Final = "top|best|most|highest|biggest|largest|busiest|least|lowest|fewest|worst|bottom"
_RANKABLE: Final = (
    r"technicians?|techs?|employees?|customers?|clients?|who"
    r"|months|(?:which|what|best|worst|top|busiest|biggest|slowest) month"
)
_NEWEST: Final = "newest|latest|most recent(?:ly)?|recent hires?|recently hired|last hired"
_OLDEST: Final = (
    "longest[- ]serving|most senior|earliest hired|first hired|oldest hires?|most tenured"
    "|longest tenure|most experienced|(?:been )?with (?:us|the company) (?:the )?longest"
    "|(?:been|worked|working) (?:here|for us) (?:the )?longest"
)
_TENURE: Final = (
    "how long (?:has|have|did) .{2,60}? (?:been (?:with us|here|employed|working)|worked (?:here"
    "|for us)|stayed)|when (?:was|did) .{2,60}? (?:hired|join|start)|(?:hire|start) date"
)
_PERSON: Final = r"technician|tech|employee|hire|person|plumber|electrician|worker|one"
_PEOPLE: Final = (
    r"technicians|techs|employees|hires|people|staff|plumbers|electricians|workers|ones|team"
)
_HOURLY: Final = (
    "hourly|per hour|an hour|/hour|wages?|pay rates?|rates? of pay|(?:get|gets|are|is|being) paid"
    "|hourly rates?"
)
_SHARE: Final = "percent(?:age)?|proportion|share|fraction|ratio|what part|how much of"

_GROUP_WORDS: Final[tuple[tuple[Group, str], ...]] = (
    ("month", r"months?"),
    ("technician", r"technicians?|techs?|employees?"),
    ("customer", r"customers?|clients?"),
    ("segment", r"segments?|customer types?"),
    ("city", r"cit(?:y|ies)|towns?|locations?"),
    ("status", r"status(?:es)?"),
    ("specialty", r"specialt(?:y|ies)|specializations?|trades?|skills?"),
)


def has(text: str, pattern: str) -> bool:
    return re.search(rf"\b(?:{pattern})\b", text) is not None


def read_limit(text: str, max_top_n: int) -> int | None:
    found = re.search(rf"\b(?:top|best|first|bottom|worst|{_NEWEST}|{_OLDEST})\s+{_NUMBER}\b", text)
    found = found or re.search(
        rf"\b{_NUMBER}\s+(?:newest|latest|most|best|biggest|top|busiest|highest|lowest)\b", text
    )
    if not found:
        return None
    value = int(found[1]) if found[1].isdigit() else _NUMBER_WORDS[found[1]]
    return max(1, min(value, max_top_n))


def read_group(text: str) -> Group | None:
    by = r"(?:by|per|each|for each|broken down by|grouped by|split by|across)"
    for group, words in _GROUP_WORDS:
        if re.search(rf"\b{by}\s+(?:the\s+)?(?:{words})\b", text):
            return group
    if has(text, r"monthly|month by month|each month|every month"):
        return "month"
    if has(text, r"residential (?:vs\.?|versus|and|or) commercial"):
        return "segment"
    # "What specialties do we have?" is a breakdown, with a count for each value.
    for group, words in (
        ("specialty", "specialt(?:y|ies)"),
        ("city", "cities"),
        ("status", "statuses"),
    ):
        if has(text, rf"(?:what|which|list(?: the| our| all)?|all)\s+(?:{words})"):
            return group
    return None


def read_measure(text: str, values: dict[str, Any]) -> None:
    """The metric: a rate, a duration, revenue, an average rate, a count or a list."""
    average = has(text, r"average|avg|mean|typical")
    if has(text, r"cancell?ation rate|percent(?:age)? (?:of )?(?:jobs )?cancell?ed"):
        values.update(subject="jobs", metric="cancel_rate")
    elif has(text, _SHARE):
        # "what percent of revenue comes from commercial customers": a share of money, not rows
        revenue = has(text, _REVENUE)
        values.update(metric="revenue_share" if revenue else "share")
        if revenue:
            values["subject"] = "jobs"
    elif has(text, _TENURE):
        values.update(subject="technicians", metric="list", order="hired_on", descending=False)
    elif has(text, _HOURLY) and not has(text, _RANKED):
        values.update(subject="technicians", metric="rate_avg")
    elif has(
        text,
        r"how long|duration|turnaround|(?:days|time|long) (?:it takes |does it take )?to"
        r" (?:complete|finish|close)|take to (?:complete|finish)",
    ):
        values.update(subject="jobs", metric="duration_avg")
    elif has(text, _REVENUE):
        per_job = average or has(text, r"per job")
        values.update(subject="jobs", metric="revenue_avg" if per_job else "revenue_sum")
    elif (average or has(text, r"how much|what(?:'s| is| are)")) and has(
        text, r"hourly rates?|per hour|an hour|wages?|pay rates?"
    ):
        values.update(subject="technicians", metric="rate_avg")
    elif has(text, r"how many|number of|count|how much|total"):
        values["metric"] = "count"
    elif has(text, r"list|show|which|who|what are|name|give me|display|find|see"):
        values["metric"] = "list"


def read_ranking(text: str, values: dict[str, Any], max_top_n: int) -> None:
    """Newest hires, highest rates, "top N ... by ...", "busiest": ordering, limit and group."""
    group = read_group(text)
    ranked = has(text, _RANKED)
    ascending = has(text, r"least|lowest|fewest|worst|bottom")
    limit = read_limit(text, max_top_n)
    # "who has been here longest", "newest plumber": one person, not a top five.
    one_person = not has(text, _PEOPLE) and has(text, rf"who|whos|{_PERSON}")
    if has(text, _NEWEST):
        values.update(subject="technicians", metric="list", order="hired_on")
        values["limit"] = limit or (1 if one_person else 5)
    elif has(text, _OLDEST):
        values.update(subject="technicians", metric="list", order="hired_on")
        values.update(descending=False, limit=limit or (1 if one_person else 5))
    elif ranked and has(
        text, r"hourly rates?|paid|pay rates?|wages?|rates?|expensive|cheapest|per hour|an hour"
    ):
        values.update(subject="technicians", metric="list", order="hourly_rate")
        values["descending"] = not ascending
        one = has(text, r"who|which technician|the (?:highest|lowest)")
        values["limit"] = limit or (1 if one else 5)
    elif ranked and group is None and values["subject"] == "jobs" and not has(text, _RANKABLE):
        # "the 3 biggest jobs last month": single jobs ranked by what they earned.
        single = has(text, r"job|ticket|one") and not has(text, r"jobs|tickets|ones")
        values.update(metric="list", order="value", limit=limit or (1 if single else 5))
        values["descending"] = not ascending
    elif ranked and group is None:
        if has(text, r"technicians?|techs?|employees?"):
            group = "technician"
        elif has(text, r"customers?|clients?"):
            group = "customer"
        elif has(text, r"who"):
            group = "technician"
        elif has(text, r"months?"):
            group = "month"
        if values.get("metric") in {None, "list"} and not has(text, r"jobs?|work|visits?|busiest"):
            values["metric"] = "revenue_sum"  # "top customers" with no measure means by revenue
        plural = has(text, r"technicians|techs|customers|clients|months|top")
        values.update(limit=limit or (5 if plural else 1), order="value")
        values["descending"] = not ascending
    elif ranked and group is not None:
        values.update(order="value", descending=not ascending, limit=limit)
    if group is not None:
        if values["subject"] != "jobs" and (
            group in {"technician", "customer", "month"} or has(text, f"jobs?|work|{_REVENUE}")
        ):
            values["subject"] = "jobs"
        values["group"] = group
        if values.get("metric") in {None, "list"}:
            values["metric"] = "count"
    if has(text, r"busiest"):
        values.update(subject="jobs", metric="count", order="value")
        values["group"] = values.get("group") or "technician"
        values["limit"] = values.get("limit") or 1
