"""The demo database: deterministic, atomic to reseed, with per-tenant numbers and trap rows."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from agent_service.demo.data import (
    COMPANIES,
    COMPANY_IDS,
    DEMO_TODAY,
    INJECTION_NOTE,
    TRAP_VALUES,
    create_schema,
    demo_facts,
    seed_database,
)


def _dump(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


def test_seed_is_deterministic_and_reports_counts(tmp_path: Path) -> None:
    first = seed_database(tmp_path / "a" / "demo.db")
    second = seed_database(tmp_path / "b" / "demo.db")
    assert (
        hashlib.sha256(_dump(first.path).encode()).digest()
        == hashlib.sha256(_dump(second.path).encode()).digest()
    )
    conn = sqlite3.connect(first.path)
    for company_id, counts in first.counts.items():
        got = tuple(
            conn.execute(
                f"SELECT count(*) FROM {table} WHERE company_id = ?", (company_id,)
            ).fetchone()[0]
            for table in ("technicians", "customers", "jobs")
        )
        assert got == tuple(counts)
    conn.close()


def test_reseed_replaces_the_file_atomically(tmp_path: Path) -> None:
    path = tmp_path / "demo.db"
    seed_database(path)
    reader = sqlite3.connect(path)  # an open reader keeps seeing a whole database
    conn = sqlite3.connect(path)
    conn.execute("DELETE FROM jobs")
    conn.commit()
    conn.close()
    seed_database(path)
    facts = demo_facts(path)
    assert all(f["jobs"] >= 150 for f in facts.values())
    assert reader.execute("SELECT count(*) FROM technicians").fetchone()[0] > 0
    reader.close()
    assert [p.name for p in tmp_path.iterdir()] == ["demo.db"]  # no temp file left behind


def test_companies_have_the_specified_shape(tmp_path: Path) -> None:
    facts = demo_facts(seed_database(tmp_path / "demo.db").path)
    assert [c.id for c in COMPANIES] == list(COMPANY_IDS) == list(facts)
    expected_staff = {
        "acme-hvac": (12, 9, 2, 1),
        "bluepeak-plumbing": (8, 6, 1, 1),
        "citywide-electric": (15, 11, 3, 1),
    }
    for company_id, f in facts.items():
        staff = (
            f["technicians"],
            f["active_technicians"],
            f["on_leave_technicians"],
            f["inactive_technicians"],
        )
        assert staff == tuple(float(n) for n in expected_staff[company_id])
        assert 20 <= f["customers"] <= 40
        assert 150 <= f["jobs"] <= 400
    revenues = [f["total_revenue"] for f in facts.values()]
    assert len(set(revenues)) == len(revenues)  # a leak would change the answer visibly


def test_rows_respect_the_documented_rules(tmp_path: Path) -> None:
    conn = sqlite3.connect(seed_database(tmp_path / "demo.db").path)
    bad_revenue = conn.execute(
        "SELECT count(*) FROM jobs WHERE status != 'completed' AND revenue != 0"
    ).fetchone()[0]
    assert bad_revenue == 0
    lo, hi = conn.execute("SELECT min(scheduled_on), max(scheduled_on) FROM jobs").fetchone()
    assert lo >= "2026-01-01"
    assert hi <= DEMO_TODAY.isoformat()
    assert conn.execute(
        "SELECT count(*) FROM jobs WHERE (status = 'completed') != (completed_on IS NOT NULL)"
    ).fetchone() == (0,)
    cross = conn.execute(
        "SELECT count(*) FROM jobs j JOIN customers c ON c.id = j.customer_id"
        " WHERE c.company_id != j.company_id"
    ).fetchone()[0]
    cross += conn.execute(
        "SELECT count(*) FROM jobs j JOIN technicians t ON t.id = j.technician_id"
        " WHERE t.company_id != j.company_id"
    ).fetchone()[0]
    assert cross == 0  # foreign keys never point across tenants
    conn.close()


def test_trap_rows_and_the_stored_injection_exist_in_one_tenant_only(tmp_path: Path) -> None:
    conn = sqlite3.connect(seed_database(tmp_path / "demo.db").path)
    for company_id, (customer, token) in TRAP_VALUES.items():
        assert conn.execute(
            "SELECT company_id FROM customers WHERE name = ?", (customer,)
        ).fetchall() == [(company_id,)]
        assert conn.execute(
            "SELECT company_id FROM jobs WHERE notes LIKE ?", (f"%{token}%",)
        ).fetchall() == [(company_id,)]
    assert conn.execute(
        "SELECT company_id FROM jobs WHERE notes = ?", (INJECTION_NOTE,)
    ).fetchall() == [("acme-hvac",)]
    names = conn.execute("SELECT name, count(DISTINCT company_id) FROM technicians GROUP BY name")
    assert all(n == 1 for _, n in names)
    conn.close()


def test_create_schema_builds_the_fixed_interface() -> None:
    conn = sqlite3.connect(":memory:")
    create_schema(conn)
    columns = {
        table: [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
        for table in ("companies", "technicians", "customers", "jobs")
    }
    assert columns["jobs"] == [
        "id", "company_id", "customer_id", "technician_id", "title", "status",
        "scheduled_on", "completed_on", "revenue", "notes",
    ]  # fmt: skip
    assert columns["technicians"] == [
        "id", "company_id", "name", "status", "specialty", "hired_on", "hourly_rate",
    ]  # fmt: skip
    assert columns["customers"] == ["id", "company_id", "name", "city", "segment"]
    indexes = {
        row[0] for row in conn.execute("SELECT tbl_name FROM sqlite_master WHERE type='index'")
    }
    assert {"technicians", "customers", "jobs"} <= indexes
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO technicians (company_id, name, status, specialty, hired_on, hourly_rate)"
            " VALUES ('x', 'n', 'retired', 's', '2026-01-01', 1)"
        )
