"""Retrieval finds the section that answers a policy question, on both engines.

The table (`retrieval_questions.py`) is asked of the SQLite FTS5 store and of the PostgreSQL
full-text store, seeded with the demo documents; a question is found at k when one of the first k
passages is an answering section. recall@3 must stay at or above 95 % on each engine, for every
company. `pytest -s` prints recall@1/3/5 per engine and company, and the misses.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from support.pg_database import dsn_for, fresh_database
from support.retrieval_questions import (
    COMPANIES,
    KS,
    REQUIRED_RECALL_AT_3,
    Search,
    first_hit,
    questions,
    recall,
)

from agent_service.demo.data import DEMO_DOCS_DIR
from agent_service.providers.offline.citations import answer_from_passages_text
from agent_service.storage.postgres.documents import PostgresDocumentStore, seed_postgres_documents
from agent_service.storage.postgres.migrate import migrate
from agent_service.storage.sqlite.documents import SqliteDocumentStore, seed_documents


async def measure(search: Search) -> dict[str, list[tuple[str, int | None]]]:
    """Per company: (question, rank of the first answering passage)."""
    found: dict[str, list[tuple[str, int | None]]] = {c: [] for c in COMPANIES}
    for company, question, sections in questions():
        found[company].append((question, await first_hit(search, company, question, sections)))
    return found


def report(engine: str, found: dict[str, list[tuple[str, int | None]]]) -> str:
    lines = [f"{engine}: recall@1 / @3 / @5"]
    everything = [rank for rows in found.values() for _, rank in rows]
    for company, rows in [*found.items(), ("all", [("", r) for r in everything])]:
        ranks = [rank for _, rank in rows]
        figures = " / ".join(f"{recall(ranks, k):.2f}" for k in KS)
        lines.append(f"  {company:<18} {figures}  ({len(ranks)} questions)")
    for company, rows in found.items():
        lines += [f"  miss@3 {company}: {q!r} (rank {r})" for q, r in rows if r is None or r > 3]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> SqliteDocumentStore:
    store = SqliteDocumentStore(tmp_path_factory.mktemp("recall") / "documents")
    seed_documents(store, DEMO_DOCS_DIR)
    return store


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    with fresh_database() as name:

        async def seed(conn: psycopg.AsyncConnection[Any]) -> None:
            await seed_postgres_documents(PostgresDocumentStore.for_connection(conn), DEMO_DOCS_DIR)

        asyncio.run(migrate(dsn_for(name), then=seed))
        yield name


def pg_store(database: str) -> PostgresDocumentStore:
    @asynccontextmanager
    async def connect() -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with await psycopg.AsyncConnection.connect(
            dsn_for(database), autocommit=True
        ) as conn:
            yield conn

    return PostgresDocumentStore(connect)


def test_the_table_covers_every_company_and_document() -> None:
    table = questions()
    for company in COMPANIES:
        docs = {p.stem for p in (DEMO_DOCS_DIR / company).glob("*.md")}
        asked = {doc for c, _, sections in table if c == company for doc, _ in sections}
        assert asked == docs, company


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> tuple[str, Search]:
    if request.param == "sqlite":
        store: SqliteDocumentStore = request.getfixturevalue("sqlite_store")
        return "sqlite", store.search
    return "postgres", pg_store(request.getfixturevalue("pg_database")).search


async def test_recall_at_3_on_each_engine(
    engine: tuple[str, Search], capsys: pytest.CaptureFixture[str]
) -> None:
    name, search = engine
    found = await measure(search)
    with capsys.disabled():
        print("\n" + report(name, found))  # noqa: T201 - the measurement is the point
    for rows in found.values():
        assert recall([rank for _, rank in rows], 3) >= REQUIRED_RECALL_AT_3, report(name, found)


def test_sections_exist_in_the_documents() -> None:
    """Every expected section is a real heading of the named document (no typo in the table)."""
    for company, _, sections in questions():
        for doc_id, heading in sections:
            text = Path(DEMO_DOCS_DIR / company / f"{doc_id}.md").read_text(encoding="utf-8")
            assert f"## {heading}\n" in text, (company, doc_id, heading)


REQUIRED_QUOTE_ACCURACY = 0.9


def section_text(company: str, doc_id: str, heading: str) -> str:
    text = (DEMO_DOCS_DIR / company / f"{doc_id}.md").read_text(encoding="utf-8")
    return " ".join(text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0].split())


async def test_the_offline_answer_quotes_a_sentence_of_the_answering_section(
    sqlite_store: SqliteDocumentStore,
) -> None:
    """The first sentence the offline answer quotes comes from a section that answers the
    question (not the first sentence of the best chunk), for at least 90 % of the table."""
    wrong: list[str] = []
    table = questions()
    for company, question, sections in table:
        answer = answer_from_passages_text(question, await sqlite_store.search(company, question))
        quoted = re.search(r"^- (.*) \[\d+\]$", answer, re.MULTILINE)
        if quoted is None or not any(
            quoted.group(1) in section_text(company, doc_id, heading)
            for doc_id, heading in sections
        ):
            wrong.append(f"{company}: {question!r} -> {answer.splitlines()[:2]}")
    assert 1 - len(wrong) / len(table) >= REQUIRED_QUOTE_ACCURACY, "\n".join(wrong)
