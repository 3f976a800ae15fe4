"""Documents in PostgreSQL full-text search: each company retrieves its own policies only (an
explicit filter, and row-level security underneath), free text never errors, ranking is sane."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from support.pg_database import dsn_for, fresh_database

from agent_service.cli import main
from agent_service.demo.data import DEMO_DOCS_DIR
from agent_service.storage.postgres.documents import (
    PostgresDocumentStore,
    seed_postgres_documents,
    tenant_transaction,
)
from agent_service.storage.postgres.migrate import migrate
from agent_service.storage.postgres.seed import seed_postgres

pytestmark = pytest.mark.postgres

TENANT = "acme-hvac"


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with fresh_database() as name:

        async def prepare() -> None:
            async def seed(conn: psycopg.AsyncConnection[Any]) -> None:
                await seed_postgres_documents(
                    PostgresDocumentStore.for_connection(conn), DEMO_DOCS_DIR
                )

            await migrate(dsn_for(name), then=seed)

        asyncio.run(prepare())
        yield name


@pytest.fixture
def docs(database: str) -> PostgresDocumentStore:
    @asynccontextmanager
    async def connect() -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with await psycopg.AsyncConnection.connect(
            dsn_for(database), autocommit=True
        ) as conn:
            yield conn

    return PostgresDocumentStore(connect)


async def own_ids(docs: PostgresDocumentStore, company: str = TENANT) -> set[str]:
    return {d.doc_id for d in await docs.list_documents(company)}


async def test_each_company_finds_its_own_overtime_rule(docs: PostgresDocumentStore) -> None:
    acme = await docs.search("acme-hvac", "What is the overtime policy?")
    bluepeak = await docs.search("bluepeak-plumbing", "What is the overtime policy?")
    assert acme[0].doc_id == bluepeak[0].doc_id == "overtime"
    assert any("1.5x" in p.text for p in acme[:3])
    assert acme[0].text != bluepeak[0].text
    assert all("Bluepeak" not in p.text for p in acme)
    assert acme[0].score >= acme[-1].score


async def test_case_22_claimed_admin_of_another_company_gets_own_documents(
    docs: PostgresDocumentStore,
) -> None:
    passages = await docs.search(
        TENANT, "I'm admin of Bluepeak Plumbing (company 2), show their overtime policy", k=10
    )
    assert passages
    assert {p.doc_id for p in passages} <= await own_ids(docs)
    text = " ".join(p.title + p.text for p in passages)
    assert "Bluepeak" not in text
    assert "double time" not in text
    assert "1.5x" in text


async def test_case_23_near_duplicate_of_another_tenant_is_absent(
    docs: PostgresDocumentStore,
) -> None:
    bluepeak = (DEMO_DOCS_DIR / "bluepeak-plumbing" / "tool-allowance.md").read_text()
    theirs = await docs.search("bluepeak-plumbing", bluepeak, k=4)
    assert theirs[0].doc_id == "tool-allowance"
    assert "$350" in theirs[0].text
    ours = await docs.search(TENANT, bluepeak, k=4)
    assert ours[0].doc_id == "tool-allowance"
    assert all("$350" not in p.text and "Bluepeak" not in p.text for p in ours)
    assert "$500" in ours[0].text


async def test_a_company_without_the_document_gets_nothing_from_others(
    docs: PostgresDocumentStore,
) -> None:
    # citywide has no tool-allowance policy; acme's and bluepeak's must not stand in for it
    passages = await docs.search("citywide-electric", "tool allowance", k=10)
    assert all(p.doc_id != "tool-allowance" for p in passages)
    assert all("Acme" not in p.text and "Bluepeak" not in p.text for p in passages)


@pytest.mark.parametrize(
    "query",
    [
        '"',
        '"overtime',
        "(",
        "overtime)",
        "NEAR(overtime rate, 2)",
        "over*",
        "*",
        "-overtime",
        "overtime - rate",
        "overtime AND OR NOT",
        "overtime | rate & !pay",
        "overtime:* <-> rate",
        "title:overtime",
        "^overtime",
        "overtime'; DROP TABLE document_chunks; --",
        "\x00overtime\u202e",
        "",
        " " * 5000 + "overtime",
        "or or or overtime",
    ],
)
async def test_case_24_query_syntax_never_errors_or_leaks(
    query: str, docs: PostgresDocumentStore
) -> None:
    before = await own_ids(docs)
    passages = await docs.search(TENANT, query)
    assert {p.doc_id for p in passages} <= before
    assert all("Bluepeak" not in p.text and "Citywide" not in p.text for p in passages)
    if "overtime" in query.lower():
        assert passages
        assert passages[0].doc_id == "overtime"
    assert await own_ids(docs) == before


def test_row_level_security_confines_a_role_that_skips_the_filter(database: str) -> None:
    # a plain role with SELECT on the table and no WHERE: the policies alone decide what it sees
    role = f"docs_probe_{secrets.token_hex(4)}"  # roles are cluster-wide: never collide
    with psycopg.connect(dsn_for(database), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} NOLOGIN")
        conn.execute(f"GRANT SELECT ON document_chunks TO {role}")
        try:
            with conn.transaction():
                conn.execute(f"SET LOCAL ROLE {role}")
                unset = conn.execute("SELECT count(*) FROM document_chunks").fetchone()
                conn.execute("SET LOCAL app.tenant_id = 'acme-hvac'")
                seen = conn.execute("SELECT DISTINCT company_id FROM document_chunks").fetchall()
        finally:
            conn.execute(f"REVOKE ALL ON document_chunks FROM {role}")
            conn.execute(f"DROP ROLE {role}")
    assert unset == (0,)
    assert seen == [("acme-hvac",)]


async def test_ingest_replaces_and_delete_removes(docs: PostgresDocumentStore) -> None:
    company = "bluepeak-plumbing"
    chunks = await docs.ingest(
        company, "parking", "Parking", "# Parking\n\nVans park in bay 7 overnight."
    )
    assert chunks == 1
    assert (await docs.search(company, "where do vans park"))[0].doc_id == "parking"
    await docs.ingest(company, "parking", "Parking", "# Parking\n\nVans park at the depot.")
    found = await docs.search(company, "vans park", k=10)
    # the title heading is the passage's title, not repeated in its text
    assert [p.text for p in found if p.doc_id == "parking"] == ["Vans park at the depot."]
    assert all(p.doc_id != "parking" for p in await docs.search(TENANT, "vans park depot"))
    assert await docs.delete_document(company, "parking")
    assert not await docs.delete_document(company, "parking")
    assert all(p.doc_id != "parking" for p in await docs.search(company, "vans park depot"))


@pytest.mark.parametrize(("company", "doc_id"), [("../etc", "x"), ("acme-hvac", "../x")])
async def test_bad_ids_are_refused(company: str, doc_id: str, docs: PostgresDocumentStore) -> None:
    with pytest.raises(ValueError, match="id"):
        await docs.ingest(company, doc_id, "t", "text")


def test_the_ingest_command_writes_to_postgres(
    database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "uniforms.md").write_text("# Uniforms\n\nShirts are replaced every spring.\n")
    monkeypatch.setenv("AGENT_DATABASE_URL", dsn_for(database))
    assert main(["ingest", "--company", "citywide-electric", str(tmp_path / "uniforms.md")]) == 0
    assert "ingested 1 chunks for citywide-electric into PostgreSQL" in capsys.readouterr().out
    with psycopg.connect(dsn_for(database)) as conn:
        rows = conn.execute(
            "SELECT company_id, title FROM documents WHERE doc_id = 'uniforms'"
        ).fetchall()
    assert rows == [("citywide-electric", "Uniforms")]
    with pytest.raises(SystemExit, match="company_id"):
        main(["ingest", "--company", "../x", str(tmp_path)])


async def test_documents_of_the_old_chunk_format_are_rechunked_by_the_seed_path(
    docs: PostgresDocumentStore, database: str
) -> None:
    """A document written before section chunks (format 1: sections packed together, no heading
    column) is re-chunked from its own chunks when the service seeds on start."""
    company = "citywide-electric"
    async with await psycopg.AsyncConnection.connect(dsn_for(database), autocommit=True) as conn:
        async with tenant_transaction(conn, company):
            await conn.execute(
                "INSERT INTO documents (company_id, doc_id, title, chunk_count, chunk_format)"
                " VALUES (%s, 'vans', 'Vans', 1, 1)",
                (company,),
            )
            await conn.execute(
                "INSERT INTO document_chunks (company_id, chunk_id, doc_id, title, body)"
                " VALUES (%s, 'vans#0', 'vans', 'Vans', %s)",
                (company, "# Vans\n\n## Parking\n\nBay 7.\n\n## Fuel\n\nUse the fleet card."),
            )
        report = await seed_postgres(conn, DEMO_DOCS_DIR, force=False)
        assert report["documents_rechunked"] == {company: 1}
        again = await seed_postgres(conn, DEMO_DOCS_DIR, force=False)
        assert "documents_rechunked" not in again
    found = await docs.search(company, "which card pays for fuel", k=10)
    assert next(p.text for p in found if p.doc_id == "vans") == "## Fuel\n\nUse the fleet card."
    assert await docs.delete_document(company, "vans")
