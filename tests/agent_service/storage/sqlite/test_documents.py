"""The per-tenant document store: isolation, FTS query sanitising, re-ingest, chunking, ids."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agent_service.demo.data import DEMO_DOCS_DIR
from agent_service.storage.chunks import chunk_sections
from agent_service.storage.sqlite.documents import (
    ChunkLimits,
    SqliteDocumentStore,
    chunk_text,
    fts_query,
    seed_documents,
)

DEMO_DOCS = DEMO_DOCS_DIR
TOPICS = ("overtime", "on-call", "safety", "time-off", "expenses")


@pytest.fixture
def store(tmp_path: Path) -> SqliteDocumentStore:
    return SqliteDocumentStore(tmp_path / "docs")


def test_demo_documents_cover_every_topic_for_every_company(store: SqliteDocumentStore) -> None:
    counts = seed_documents(store, DEMO_DOCS)
    assert set(counts) == {"acme-hvac", "bluepeak-plumbing", "citywide-electric"}
    for company_id in counts:
        docs = {d.doc_id: d for d in store.list_documents(company_id)}
        assert set(TOPICS) <= set(docs)
        assert sum(d.chunk_count for d in docs.values()) == counts[company_id]
        assert all(d.title and not d.title.startswith("#") for d in docs.values())


@pytest.mark.parametrize(
    ("company_id", "question", "must_contain"),
    [
        ("acme-hvac", "overtime rate", "1.5x"),
        ("bluepeak-plumbing", "overtime rate", "2x"),
        ("citywide-electric", "overtime rate", "1.75x"),
        ("acme-hvac", "on-call stipend", "$250"),
        ("bluepeak-plumbing", "on-call stipend", "$40"),
        ("citywide-electric", "on-call stipend", "$300"),
        ("acme-hvac", "how many PTO days per year", "15 days"),
        ("bluepeak-plumbing", "how many PTO days per year", "20 days"),
        ("citywide-electric", "how many paid vacation days per year", "12 days"),
        ("acme-hvac", "mileage reimbursement", "$0.67"),
        ("bluepeak-plumbing", "mileage reimbursement", "$0.60"),
        ("citywide-electric", "mileage reimbursement", "$0.70"),
    ],
)
async def test_each_tenant_gets_its_own_rule(
    store: SqliteDocumentStore, company_id: str, question: str, must_contain: str
) -> None:
    seed_documents(store, DEMO_DOCS)
    passages = await store.search(company_id, question, k=2)
    assert must_contain in passages[0].text
    others = {"acme-hvac": "Acme", "bluepeak-plumbing": "Bluepeak", "citywide-electric": "Citywide"}
    for other, name in others.items():
        if other != company_id:
            assert all(name not in p.text and name not in p.title for p in passages)


async def test_one_file_per_tenant_and_statistics_do_not_mix(
    store: SqliteDocumentStore, tmp_path: Path
) -> None:
    store.ingest(
        "t1", "policy", "Policy", "Overtime is paid at 1.5x after 40 hours.\n\nBreaks are paid."
    )
    before = await store.search("t1", "overtime breaks")
    # Another tenant floods its own store with the same words; t1's scores must not move.
    for i in range(30):
        store.ingest("t2", f"doc-{i}", "Noise", "overtime overtime breaks " * 20)
    after = await store.search("t1", "overtime breaks")
    assert [(p.chunk_id, p.score) for p in before] == [(p.chunk_id, p.score) for p in after]
    assert sorted(p.name for p in (tmp_path / "docs").iterdir()) == ["t1.sqlite3", "t2.sqlite3"]
    assert {p.doc_id for p in await store.search("t1", "noise overtime", k=50)} == {"policy"}


async def test_reingest_replaces_the_document(store: SqliteDocumentStore) -> None:
    first = store.ingest(
        "t1", "pto", "Time off", "Staff earn 10 days of leave.\n\n" + "Old words. " * 200
    )
    assert first > 1
    second = store.ingest("t1", "pto", "Time off", "Staff earn 25 days of leave.")
    assert second == 1
    passages = await store.search("t1", "days of leave", k=10)
    assert [p.text for p in passages] == ["Staff earn 25 days of leave."]
    assert await store.search("t1", "old words") == []
    assert [(d.doc_id, d.chunk_count) for d in store.list_documents("t1")] == [("pto", 1)]


async def test_delete_document(store: SqliteDocumentStore) -> None:
    store.ingest("t1", "a", "A", "alpha policy")
    store.ingest("t1", "b", "B", "beta policy")
    assert store.delete_document("t1", "a") is True
    assert store.delete_document("t1", "a") is False
    assert store.delete_document("unknown-tenant", "a") is False
    assert [p.doc_id for p in await store.search("t1", "alpha beta policy")] == ["b"]


async def test_unknown_tenant_has_nothing_and_gets_no_file(
    store: SqliteDocumentStore, tmp_path: Path
) -> None:
    assert await store.search("nobody", "overtime") == []
    assert store.list_documents("nobody") == []
    assert not (tmp_path / "docs").exists()


@pytest.mark.parametrize("company_id", ["", "../escape", ".hidden", "a/b", "a\\b", "x" * 129, "é"])
async def test_company_id_is_validated_before_it_becomes_a_path(
    store: SqliteDocumentStore, company_id: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="company_id"):
        store.ingest(company_id, "doc", "Doc", "text")
    with pytest.raises(ValueError, match="company_id"):
        await store.search(company_id, "text")
    assert not (tmp_path / "escape.sqlite3").exists()
    assert not (tmp_path / "docs").exists()


@pytest.mark.parametrize("doc_id", ["", "../x", "a b", "x" * 200])
def test_doc_id_is_validated(store: SqliteDocumentStore, doc_id: str) -> None:
    with pytest.raises(ValueError, match="doc_id"):
        store.ingest("t1", doc_id, "T", "text")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("What is the overtime rate?", '"overtime" OR "rate"'),
        ('over"time', '"over" OR "time"'),
        ("NEAR(overtime rate)", '"overtime" OR "rate"'),
        ("overtime* -rate", '"overtime" OR "rate"'),
        ("overtime AND NOT rate OR pay", '"overtime" OR "rate" OR "pay"'),
        ("title:overtime ^start", '"title" OR "overtime" OR "start"'),
        ("Overtime overtime OVERTIME", '"overtime"'),
        ("the of and", ""),
        ("", ""),
        ("()*\"'-:^{}", ""),
        ("Überstunden café", '"überstunden" OR "café"'),
    ],
)
def test_fts_query_sanitising(text: str, expected: str) -> None:
    assert fts_query(text) == expected


def test_fts_query_is_bounded() -> None:
    words = " ".join(f"word{i}" for i in range(500))
    assert fts_query(words).count(" OR ") == 31


async def test_k_is_clamped(store: SqliteDocumentStore) -> None:
    for i in range(60):
        store.ingest("t1", f"d{i}", "Doc", f"shared term number {i}")
    assert len(await store.search("t1", "shared", k=0)) == 1
    assert len(await store.search("t1", "shared", k=1000)) == 50


def test_each_section_is_a_chunk_that_keeps_its_heading() -> None:
    text = (DEMO_DOCS / "acme-hvac" / "overtime.md").read_text()
    chunks = chunk_sections(text, ChunkLimits(), "Acme Heating & Cooling: Overtime Policy")
    assert [c.heading for c in chunks] == ["When overtime applies", "Rate", "Approval", "Limits"]
    assert all(c.text.startswith(f"## {c.heading}\n\n") for c in chunks)
    assert all(len(c.text) <= 900 for c in chunks)
    body = "".join(c.text for c in chunks).replace("\n", "").replace(" ", "")
    assert body == text.split("\n", 1)[1].replace("\n", "").replace(" ", "")  # nothing lost


def test_a_long_section_is_cut_and_every_piece_repeats_its_heading() -> None:
    text = "## Rules\n\n" + "\n\n".join(f"Paragraph {i} " + "word " * 30 for i in range(10))
    chunks = chunk_sections(text, ChunkLimits(max_chars=400))
    assert len(chunks) > 2
    assert all(c.heading == "Rules" and c.text.startswith("## Rules\n\n") for c in chunks)
    assert all(len(c.text) <= 400 for c in chunks)
    assert sum(c.text.count("Paragraph") for c in chunks) == 10


def test_long_paragraphs_are_cut_at_word_boundaries() -> None:
    chunks = chunk_text("word " * 1000, ChunkLimits(max_chars=200))
    assert all(len(c) <= 200 for c in chunks)
    assert all(not c.startswith(" ") and "wor d" not in c for c in chunks)
    assert sum(c.count("word") for c in chunks) == 1000


def test_a_store_of_the_old_chunk_format_is_rechunked_on_open(tmp_path: Path) -> None:
    """A store written before section chunks (format 1: no heading column, sections packed
    together) is rebuilt from its own chunks the first time it is opened."""
    root = tmp_path / "docs"
    root.mkdir()
    conn = sqlite3.connect(root / "t1.sqlite3")
    conn.executescript(
        "CREATE TABLE documents (doc_id TEXT PRIMARY KEY, title TEXT NOT NULL,"
        " chunk_count INTEGER NOT NULL);"
        "CREATE VIRTUAL TABLE chunks USING fts5(chunk_id UNINDEXED, doc_id UNINDEXED, title, text);"
    )
    old = ["# Time Off\n\n## Paid time off\n\nTwenty days.", "## Requesting\n\nAsk ahead."]
    with conn:
        conn.execute("INSERT INTO documents VALUES ('pto', 'Time Off', 2)")
        conn.executemany(
            "INSERT INTO chunks VALUES (?, 'pto', 'Time Off', ?)",
            [(f"pto#{i}", text) for i, text in enumerate(old)],
        )
    conn.close()
    store = SqliteDocumentStore(root)
    assert not store.is_current("t1")
    assert store.upgrade_all() == ["t1"]
    assert store.is_current("t1") and store.upgrade_all() == []
    assert [d.chunk_count for d in store.list_documents("t1")] == [2]


async def test_an_old_store_is_upgraded_by_a_search(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    conn = sqlite3.connect(root / "t1.sqlite3")
    conn.executescript(
        "CREATE TABLE documents (doc_id TEXT PRIMARY KEY, title TEXT, chunk_count INTEGER);"
        "CREATE VIRTUAL TABLE chunks USING fts5(chunk_id UNINDEXED, doc_id UNINDEXED, title, text);"
        "INSERT INTO documents VALUES ('pto', 'Time Off', 1);"
        "INSERT INTO chunks VALUES ('pto#0', 'pto', 'Time Off', '## Leave\n\nTwelve weeks.');"
    )
    conn.close()
    found = await SqliteDocumentStore(root).search("t1", "how long can my family leave be")
    assert [p.text for p in found] == ["## Leave\n\nTwelve weeks."]


def test_ingest_directory_takes_titles_from_headings(
    store: SqliteDocumentStore, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "pto.md").write_text("Intro line\n\n# Paid Time Off\n\nTwenty days.")
    (folder / "plain.md").write_text("No heading here.")
    (folder / "ignored.txt").write_text("# Not markdown")
    assert store.ingest_directory("t1", folder) == 3  # the intro is a section of its own
    titles = {d.doc_id: d.title for d in store.list_documents("t1")}
    assert titles == {"plain": "plain", "pto": "Paid Time Off"}
