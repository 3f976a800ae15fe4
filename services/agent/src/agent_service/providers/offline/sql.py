"""SQL for a `Spec` over the demo schema: one read-only SELECT, with names as escaped LIKE literals.

The statements never mention the tenant column: the guard and the executor confine every table to
the caller's company. Values that come from the question (names, cities) are only ever inlined as
string literals with quotes doubled and LIKE wildcards neutralised.
"""

from __future__ import annotations

import re
from typing import Final, Literal

from agent_service.providers.offline.question import Spec
from agent_service.providers.offline.trades import specialty_stems

DetailKind = Literal["technician", "customer", "job"]

_ISO: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_STATUS_VALUES: Final = frozenset(
    {"active", "on_leave", "inactive", "scheduled", "in_progress", "completed", "cancelled"}
)


def text_literal(value: str) -> str:
    """A SQL string literal for `value`: quotes doubled, control characters dropped."""
    clean = "".join(ch for ch in value if ch.isprintable())
    return "'" + clean.replace("'", "''") + "'"


def like_literal(fragment: str) -> str:
    """A `%fragment%` LIKE pattern literal; `%` in the fragment matches one character, not many."""
    return text_literal("%" + fragment.strip().replace("%", "_") + "%")


def specialty_condition(stem: str) -> str:
    """`t.specialty` matching a specialty word, or any specialty of the trade it names."""
    likes = [f"t.specialty LIKE {like_literal(s)}" for s in specialty_stems(stem)]
    return likes[0] if len(likes) == 1 else "(" + " OR ".join(likes) + ")"


def tech_status_condition(value: str) -> str:
    """The technician status filter; "current" means anyone who has not left (not inactive)."""
    return "t.status != 'inactive'" if value == "current" else f"t.status = {_status(value)}"


def _status(value: str) -> str:
    if value not in _STATUS_VALUES:
        raise ValueError(f"unknown status {value!r}")
    return f"'{value}'"


def _between(column: str, spec: Spec) -> str | None:
    if spec.period is None:
        return None
    if not (_ISO.match(spec.period.start) and _ISO.match(spec.period.end)):
        raise ValueError("malformed period")
    return f"{column} BETWEEN '{spec.period.start}' AND '{spec.period.end}'"


def ranks_jobs_by_revenue(spec: Spec) -> bool:
    """A list of single jobs ordered by what they earned ("the 3 biggest jobs")."""
    return spec.subject == "jobs" and spec.metric == "list" and spec.order == "value"


def job_statuses(spec: Spec) -> tuple[str, ...]:
    """The job statuses a spec filters on, including those its measure implies."""
    if spec.metric == "cancel_rate":
        return ()
    earned = spec.metric in {"revenue_sum", "revenue_avg", "duration_avg"}
    if not spec.job_status and (earned or ranks_jobs_by_revenue(spec)):
        return ("completed",)
    return spec.job_status


def job_date_column(spec: Spec) -> str:
    """Revenue and completed work are dated by completion; everything else by schedule."""
    return "j.completed_on" if job_statuses(spec) == ("completed",) else "j.scheduled_on"


def _where(parts: list[str | None]) -> str:
    kept = [p for p in parts if p]
    return " WHERE " + " AND ".join(kept) if kept else ""


def _order_limit(order: str, limit: int | None) -> str:
    return f" ORDER BY {order}" + (f" LIMIT {int(limit)}" if limit else "")


def build_sql(spec: Spec, today_iso: str) -> str:
    """The one statement that answers `spec`; raises ValueError on a spec no shape covers."""
    if spec.subject == "technicians":
        return _technicians_sql(spec)
    if spec.subject == "customers":
        return _customers_sql(spec)
    return _jobs_sql(spec, today_iso)


def _jobs_subquery(column: str, spec: Spec) -> str:
    period = _between("j.scheduled_on", spec)
    return f"(SELECT j.{column} FROM jobs j WHERE j.{column} IS NOT NULL" + (
        f" AND {period})" if period else ")"
    )


def _technicians_sql(spec: Spec) -> str:
    name = spec.technician or spec.person
    where: list[str | None] = [
        tech_status_condition(spec.tech_status) if spec.tech_status else None,
        specialty_condition(spec.specialty) if spec.specialty else None,
        f"t.name LIKE {like_literal(name)}" if name else None,
    ]
    if spec.without_jobs:
        where.append(f"t.id NOT IN {_jobs_subquery('technician_id', spec)}")
    else:
        where.append(_between("t.hired_on", spec))
    clause = _where(where)
    if spec.group in {"status", "specialty"}:
        key = f"t.{spec.group}"
        return (
            f"SELECT {key} AS {spec.group}, count(*) AS technicians FROM technicians t{clause}"
            f" GROUP BY {key}" + _order_limit(f"technicians DESC, {key}", spec.limit)
        )
    if spec.metric == "count":
        return f"SELECT count(*) AS technicians FROM technicians t{clause}"
    if spec.metric == "rate_avg":
        return (
            "SELECT round(avg(t.hourly_rate), 2) AS average_hourly_rate, count(*) AS technicians"
            f" FROM technicians t{clause}"
        )
    order = "t.name"
    if spec.order in {"hourly_rate", "hired_on"}:
        order = f"t.{spec.order} {'DESC' if spec.descending else 'ASC'}, t.name"
    return (
        "SELECT t.id AS technician_id, t.name, t.status, t.specialty, t.hired_on, t.hourly_rate"
        f" FROM technicians t{clause}" + _order_limit(order, spec.limit)
    )


def _customers_sql(spec: Spec) -> str:
    name = spec.customer or spec.person
    where: list[str | None] = [
        f"c.segment = {text_literal(spec.segment)}" if spec.segment else None,
        f"c.city LIKE {like_literal(spec.city)}" if spec.city else None,
        f"c.name LIKE {like_literal(name)}" if name else None,
    ]
    if spec.without_jobs:
        where.append(f"c.id NOT IN {_jobs_subquery('customer_id', spec)}")
    elif spec.period is not None:
        where.append(f"c.id IN {_jobs_subquery('customer_id', spec)}")
    clause = _where(where)
    if spec.group in {"city", "segment"}:
        key = f"c.{spec.group}"
        return (
            f"SELECT {key} AS {spec.group}, count(*) AS customers FROM customers c{clause}"
            f" GROUP BY {key}" + _order_limit(f"customers DESC, {key}", spec.limit)
        )
    if spec.metric == "count":
        return f"SELECT count(*) AS customers FROM customers c{clause}"
    return (
        f"SELECT c.id AS customer_id, c.name, c.city, c.segment FROM customers c{clause}"
        + _order_limit("c.name", spec.limit)
    )


_GROUP_KEYS: Final[dict[str, tuple[str, str]]] = {
    "status": ("j.status AS status", "j.status"),
    "specialty": ("t.specialty AS specialty", "t.specialty"),
    "technician": ("t.id AS technician_id, t.name AS technician", "t.id, t.name"),
    "customer": ("c.id AS customer_id, c.name AS customer", "c.id, c.name"),
    "segment": ("c.segment AS segment", "c.segment"),
    "city": ("c.city AS city", "c.city"),
}


def _job_value(spec: Spec) -> tuple[str, str]:
    """(select list, alias to rank by) of the measure."""
    if spec.metric == "revenue_sum":
        return "round(coalesce(sum(j.revenue), 0), 2) AS revenue", "revenue"
    if spec.metric == "revenue_avg":
        return "round(avg(j.revenue), 2) AS average_revenue, count(*) AS jobs", "average_revenue"
    if spec.metric == "duration_avg":
        days = "julianday(j.completed_on) - julianday(j.scheduled_on)"
        return f"round(avg({days}), 1) AS average_days, count(*) AS jobs", "average_days"
    if spec.metric == "cancel_rate":
        cancelled = "sum(CASE WHEN j.status = 'cancelled' THEN 1 ELSE 0 END)"
        return (
            f"round(100.0 * {cancelled} / count(*), 1) AS cancelled_percent, count(*) AS jobs",
            "cancelled_percent",
        )
    return "count(*) AS jobs", "jobs"


def _jobs_sql(spec: Spec, today_iso: str) -> str:
    if not _ISO.match(today_iso):
        raise ValueError("malformed today")
    date_column = job_date_column(spec)
    statuses = job_statuses(spec)
    person = like_literal(spec.person) if spec.person else None
    by_tech = bool(spec.technician or spec.specialty or spec.tech_status)
    inner_tech = by_tech or spec.group in {"technician", "specialty"}
    listing = spec.metric == "list" and spec.group is None
    joins = " JOIN customers c ON c.id = j.customer_id"
    joins += " JOIN technicians t" if inner_tech else " LEFT JOIN technicians t"
    joins += " ON t.id = j.technician_id"
    where: list[str | None] = [
        "j.status = " + _status(statuses[0]) if len(statuses) == 1 else None,
        "j.status IN (" + ", ".join(_status(s) for s in statuses) + ")"
        if len(statuses) > 1
        else None,
        _between(date_column, spec),
        "j.technician_id IS NULL" if spec.unassigned else None,
        "j.status IN ('scheduled', 'in_progress') AND j.scheduled_on < " + f"'{today_iso}'"
        if spec.overdue
        else None,
        tech_status_condition(spec.tech_status) if spec.tech_status else None,
        specialty_condition(spec.specialty) if spec.specialty else None,
        f"t.name LIKE {like_literal(spec.technician)}" if spec.technician else None,
        f"c.name LIKE {like_literal(spec.customer)}" if spec.customer else None,
        f"(t.name LIKE {person} OR c.name LIKE {person})" if person else None,
        f"c.segment = {text_literal(spec.segment)}" if spec.segment else None,
        f"c.city LIKE {like_literal(spec.city)}" if spec.city else None,
    ]
    source = f"FROM jobs j{joins}{_where(where)}"
    if listing:
        columns = (
            "j.id AS job_id, j.title, c.name AS customer, t.name AS technician, j.status,"
            " j.scheduled_on, j.completed_on, j.revenue"
        )
        direction = "ASC" if spec.period else "DESC"
        order = f"{date_column} {direction}, j.id {direction}"
        if ranks_jobs_by_revenue(spec):
            order = f"j.revenue {'DESC' if spec.descending else 'ASC'}, j.id"
        return f"SELECT {columns} {source}" + _order_limit(order, spec.limit)
    value, alias = _job_value(spec)
    if spec.group is None:
        return f"SELECT {value} {source}"
    if spec.group == "month":
        key_select, key = f"strftime('%Y-%m', {date_column}) AS month", "month"
    else:
        key_select, key = _GROUP_KEYS[spec.group]
    direction = "DESC" if spec.descending else "ASC"
    by_value = spec.order == "value" or spec.group != "month"
    order = f"{alias} {direction}, {key}" if by_value else key
    return f"SELECT {key_select}, {value} {source} GROUP BY {key}" + _order_limit(order, spec.limit)


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def detail_sql(kind: DetailKind, row_id: int) -> str:
    """Everything about one technician, customer or job, by id (still confined to the tenant)."""
    if not _is_id(row_id):
        raise ValueError("an id must be a non-negative integer")
    completed = "sum(CASE WHEN j.status = 'completed' THEN 1 ELSE 0 END) AS completed_jobs"
    revenue = "round(coalesce(sum(j.revenue), 0), 2) AS revenue"
    if kind == "technician":
        return (
            "SELECT t.id AS technician_id, t.name, t.status, t.specialty, t.hired_on,"
            f" t.hourly_rate, count(j.id) AS jobs, {completed}, {revenue},"
            " max(j.scheduled_on) AS last_job_on"
            " FROM technicians t LEFT JOIN jobs j ON j.technician_id = t.id"
            f" WHERE t.id = {row_id}"
            " GROUP BY t.id, t.name, t.status, t.specialty, t.hired_on, t.hourly_rate"
        )
    if kind == "customer":
        return (
            "SELECT c.id AS customer_id, c.name, c.city, c.segment, count(j.id) AS jobs,"
            f" {completed}, {revenue}, max(j.scheduled_on) AS last_job_on"
            " FROM customers c LEFT JOIN jobs j ON j.customer_id = c.id"
            f" WHERE c.id = {row_id} GROUP BY c.id, c.name, c.city, c.segment"
        )
    return (
        "SELECT j.id AS job_id, j.title, j.status, j.scheduled_on, j.completed_on, j.revenue,"
        " c.name AS customer, c.city, t.name AS technician, j.notes"
        " FROM jobs j JOIN customers c ON c.id = j.customer_id"
        f" LEFT JOIN technicians t ON t.id = j.technician_id WHERE j.id = {row_id}"
    )


def name_lookup_sql(name: str) -> str:
    """Technicians and customers whose name contains `name`, in one uniform shape."""
    pattern = like_literal(name)
    return (
        "SELECT 'technician' AS kind, t.id AS id, t.name AS name,"
        " t.status || ', ' || t.specialty AS summary"
        f" FROM technicians t WHERE t.name LIKE {pattern}"
        " UNION ALL SELECT 'customer' AS kind, c.id AS id, c.name AS name,"
        " c.segment || ', ' || c.city AS summary"
        f" FROM customers c WHERE c.name LIKE {pattern} ORDER BY name"
    )
