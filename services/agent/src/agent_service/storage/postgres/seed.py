"""Seed the demo companies into PostgreSQL: the rows of a freshly generated SQLite demo database
(one generator, so both engines hold the same data and ids) and the demo documents."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg import sql

from agent_service.demo.data import COMPANY_IDS, seed_database
from agent_service.storage.postgres.documents import PostgresDocumentStore, seed_postgres_documents

_TABLES: Final = (
    ("technicians", ("id", "name", "status", "specialty", "hired_on", "hourly_rate")),
    ("customers", ("id", "name", "city", "segment")),
    (
        "jobs",
        (
            "id", "customer_id", "technician_id", "title", "status", "scheduled_on",
            "completed_on", "revenue", "notes",
        ),
    ),
)  # fmt: skip


async def set_tenant(conn: psycopg.AsyncConnection[Any], tenant_id: str) -> None:
    """`SET LOCAL app.tenant_id` (needs no EXECUTE on set_config, which is revoked)."""
    await conn.execute(
        sql.SQL("SET LOCAL app.tenant_id = {}").format(sql.Literal(tenant_id)).as_string(conn)
    )


async def seed_business_data(conn: psycopg.AsyncConnection[Any]) -> dict[str, int]:
    """Replace the business tables' rows with the demo data; rows per table."""
    with tempfile.TemporaryDirectory(prefix="agent-seed-") as tmp:
        path = seed_database(Path(tmp) / "demo.sqlite").path
        source = sqlite3.connect(path)
        try:
            companies = source.execute("SELECT id, name, city FROM companies").fetchall()
            rows = {
                table: source.execute(
                    f"SELECT company_id, {', '.join(columns)} FROM {table} ORDER BY id"
                ).fetchall()
                for table, columns in _TABLES
            }
        finally:
            source.close()
    counts: dict[str, int] = {}
    async with conn.transaction():
        await conn.execute("TRUNCATE jobs, customers, technicians, companies")
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO companies (id, name, city) VALUES (%s, %s, %s)", companies
            )
            for table, columns in _TABLES:
                statement = sql.SQL("INSERT INTO {} (company_id, {}) VALUES ({})").format(
                    sql.Identifier(table),
                    sql.SQL(", ").join(map(sql.Identifier, columns)),
                    sql.SQL(", ").join(sql.Placeholder() * (len(columns) + 1)),
                )
                # FORCE RLS applies to the owner too: insert each company's rows as that tenant
                for company_id in COMPANY_IDS:
                    await set_tenant(conn, company_id)
                    await cur.executemany(statement, [r for r in rows[table] if r[0] == company_id])
                counts[table] = len(rows[table])
                await conn.execute(
                    sql.SQL(
                        "SELECT setval(pg_get_serial_sequence({}, 'id'),"
                        " (SELECT coalesce(max(id), 1) FROM {}))"
                    ).format(sql.Literal(table), sql.Identifier(table))
                )
    return counts


async def seed_postgres(
    conn: psycopg.AsyncConnection[Any], docs_root: Path, *, force: bool
) -> dict[str, Any]:
    """Seed business data and documents when missing (always with `force`); what was seeded."""
    report: dict[str, Any] = {}
    cursor = await conn.execute("SELECT count(*) FROM companies")
    row = await cursor.fetchone()
    if force or row is None or row[0] == 0:
        report["database"] = await seed_business_data(conn)
    store = PostgresDocumentStore.for_connection(conn)
    if force or not await store.has_any_document(COMPANY_IDS):
        report["documents"] = await seed_postgres_documents(store, docs_root)
    else:
        rechunked = {
            c: n for c in await _companies_with_documents(conn) if (n := await store.rechunk(c))
        }
        if rechunked:
            report["documents_rechunked"] = rechunked
    return report


async def _companies_with_documents(conn: psycopg.AsyncConnection[Any]) -> list[str]:
    """The demo companies, and every other company whose documents this role may see (all of
    them for the owner with BYPASSRLS or a superuser; row-level security hides them otherwise)."""
    cursor = await conn.execute("SELECT DISTINCT company_id FROM documents")
    seen = {str(company) for (company,) in await cursor.fetchall()}
    return sorted(seen | set(COMPANY_IDS))
