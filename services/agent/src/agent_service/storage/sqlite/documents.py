"""Per-tenant document store: BM25 over SQLite FTS5, one database file per company.

Separate files (not a shared table with a tenant filter) mean no query can forget the filter and
the ranking statistics (IDF) of one tenant never depend on another tenant's documents.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

import structlog

from agent_service.providers.base import Passage
from agent_service.storage.chunks import (
    CHUNK_FORMAT,
    ChunkLimits,
    chunk_sections,
    chunk_text,
    first_heading,
)
from agent_service.storage.embeddings import CANDIDATES, Hybrid, reciprocal_rank_fusion
from agent_service.storage.query import MAX_QUERY_TERMS, expand_query, fts_query, search_query
from agent_service.storage.sqlite.vectors import SqliteVectorIndex
from contracts.agent_api import ID_PATTERN, MAX_ID_CHARS

log = structlog.get_logger("agent_service.storage.sqlite.documents")

_ID_RE: Final = re.compile(ID_PATTERN)
_DOC_ID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")

MAX_K: Final = 50
TITLE_WEIGHT: Final = 2.0
HEADING_WEIGHT: Final = 3.0
"""bm25() column weights (the body weighs 1): a section whose heading names the question's
subject ("## Rate", "## Requesting time off") outranks one that mentions it in passing."""

_SCHEMA: Final = f"""
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    chunk_count INTEGER NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks USING fts5(
    chunk_id UNINDEXED, doc_id UNINDEXED, title, heading, text, tokenize = 'porter unicode61'
);
PRAGMA user_version = {CHUNK_FORMAT};
"""


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    doc_id: str
    title: str
    chunk_count: int


__all__ = [
    "MAX_K",
    "MAX_QUERY_TERMS",
    "ChunkLimits",
    "DocumentInfo",
    "SqliteDocumentStore",
    "chunk_text",
    "fts_query",
    "seed_documents",
]


class SqliteDocumentStore:
    """BM25 retrieval over each company's own documents, in `<root>/<company_id>.sqlite3`."""

    def __init__(
        self, root: Path, chunking: ChunkLimits | None = None, hybrid: Hybrid | None = None
    ) -> None:
        self._root = Path(root)
        self._chunking = chunking or ChunkLimits()
        self._hybrid = hybrid

    def ingest(self, company_id: str, doc_id: str, title: str, text: str) -> int:
        """Store (or replace) one document for `company_id`; return how many chunks it became."""
        if not _DOC_ID_RE.fullmatch(doc_id):
            raise ValueError("doc_id must be 1-128 letters, digits or _ . : @ -")
        title = title.strip() or doc_id
        conn = self._open_for_write(company_id)
        try:
            with conn:
                count = self._replace(conn, doc_id, title, text)
                texts = conn.execute(
                    "SELECT chunk_id, text FROM chunks WHERE doc_id = ? ORDER BY rowid", (doc_id,)
                ).fetchall()
        finally:
            conn.close()
        if self._hybrid is not None:
            try:
                vectors = self._hybrid.embedder.embed_documents([f"{title}\n{t}" for _, t in texts])
            except Exception as exc:  # optional: the document is still found by BM25
                log.warning("embeddings_failed", error=type(exc).__name__, detail=str(exc)[:200])
                self._vectors(company_id).delete(doc_id)
            else:
                self._vectors(company_id).replace(doc_id, [c for c, _ in texts], vectors)
        return count

    def _replace(self, conn: sqlite3.Connection, doc_id: str, title: str, text: str) -> int:
        chunks = chunk_sections(text, self._chunking, title)
        conn.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
        conn.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))
        conn.executemany(
            "INSERT INTO chunks (chunk_id, doc_id, title, heading, text) VALUES (?, ?, ?, ?, ?)",
            [
                (f"{doc_id}#{i}", doc_id, title, chunk.heading, chunk.text)
                for i, chunk in enumerate(chunks)
            ],
        )
        conn.execute(
            "INSERT INTO documents (doc_id, title, chunk_count) VALUES (?, ?, ?)",
            (doc_id, title, len(chunks)),
        )
        return len(chunks)

    def ingest_directory(self, company_id: str, path: Path) -> int:
        """Ingest every `*.md` file under `path` (doc id = file stem, title = first heading)."""
        total = 0
        for file in sorted(Path(path).glob("*.md")):
            text = file.read_text(encoding="utf-8")
            total += self.ingest(company_id, file.stem, first_heading(text) or file.stem, text)
        return total

    async def search(self, company_id: str, query: str, k: int = 4) -> list[Passage]:
        """The `k` best passages of `company_id`'s documents for `query` (free text, any chars);
        with embeddings configured, BM25's and the vectors' candidates fused by rank."""
        if self._hybrid is None:
            return await asyncio.to_thread(self._search, company_id, query, k)
        k = max(1, min(int(k), MAX_K))
        lexical = await asyncio.to_thread(self._search, company_id, query, max(k, CANDIDATES))
        try:
            # the question with its intent's policy words, as BM25 gets it
            vector = await self._hybrid.embedder.aembed_query(expand_query(query))
        except Exception as exc:  # the endpoint is optional: BM25 alone still answers
            log.warning("embeddings_failed", error=type(exc).__name__, detail=str(exc)[:200])
            return lexical[:k]
        index = self._vectors(company_id)
        nearest = await asyncio.to_thread(index.nearest, vector, max(k, CANDIDATES))
        fused = reciprocal_rank_fusion([p.chunk_id for p in lexical], nearest)[:k]
        found = {p.chunk_id: p for p in lexical}
        missing = [chunk_id for chunk_id, _ in fused if chunk_id not in found]
        if missing:
            found |= await asyncio.to_thread(self._passages, company_id, missing)
        return [
            replace(found[chunk_id], score=score) for chunk_id, score in fused if chunk_id in found
        ]

    def _passages(self, company_id: str, chunk_ids: list[str]) -> dict[str, Passage]:
        conn = self._open_existing(company_id)
        if conn is None:
            return {}
        try:
            marks = ", ".join("?" * len(chunk_ids))
            rows = conn.execute(
                f"SELECT chunk_id, doc_id, title, text FROM chunks WHERE chunk_id IN ({marks})",
                chunk_ids,
            ).fetchall()
        finally:
            conn.close()
        return {c: Passage(doc_id=d, title=t, chunk_id=c, text=x, score=0.0) for c, d, t, x in rows}

    def _vectors(self, company_id: str) -> SqliteVectorIndex:
        assert self._hybrid is not None
        # a folder of their own: `<root>/*.sqlite3` are the FTS5 stores, one per company
        path = self._root / "vectors" / self._path(company_id).name
        return SqliteVectorIndex(path, self._hybrid.model, self._hybrid.dimensions)

    def list_documents(self, company_id: str) -> list[DocumentInfo]:
        """The documents stored for `company_id`, by doc id."""
        conn = self._open_existing(company_id)
        if conn is None:
            return []
        try:
            rows = conn.execute(
                "SELECT doc_id, title, chunk_count FROM documents ORDER BY doc_id"
            ).fetchall()
        finally:
            conn.close()
        return [DocumentInfo(doc_id, title, count) for doc_id, title, count in rows]

    def delete_document(self, company_id: str, doc_id: str) -> bool:
        """Remove one document of `company_id`; return whether it existed."""
        if not self._path(company_id).is_file():
            return False
        conn = self._open_for_write(company_id)
        try:
            with conn:
                conn.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
                deleted = conn.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))
            if self._hybrid is not None:
                self._vectors(company_id).delete(doc_id)
            return deleted.rowcount > 0
        finally:
            conn.close()

    def _search(self, company_id: str, query: str, k: int) -> list[Passage]:
        k = max(1, min(int(k), MAX_K))
        match = search_query(query)
        if not match:
            return []
        conn = self._open_existing(company_id)
        if conn is None:
            return []
        try:
            rows = conn.execute(
                # bm25() is lower-is-better; a chunk's title and heading weigh more than its text
                "SELECT chunk_id, doc_id, title, text, bm25(chunks, 0.0, 0.0, ?, ?, 1.0) AS rank"
                " FROM chunks WHERE chunks MATCH ? ORDER BY rank, rowid LIMIT ?",
                (TITLE_WEIGHT, HEADING_WEIGHT, match, k),
            ).fetchall()
        finally:
            conn.close()
        return [
            Passage(doc_id=doc_id, title=title, chunk_id=chunk_id, text=text, score=-rank)
            for chunk_id, doc_id, title, text, rank in rows
        ]

    def _path(self, company_id: str) -> Path:
        # The id becomes a file name: only the contract's pattern (no separators, no leading dot).
        if not (0 < len(company_id) <= MAX_ID_CHARS and _ID_RE.fullmatch(company_id)):
            raise ValueError("company_id does not match the contract's id pattern")
        return self._root / f"{company_id}.sqlite3"

    def is_current(self, company_id: str) -> bool:
        """Whether `company_id`'s store (if any) holds chunks of the current `CHUNK_FORMAT`."""
        path = self._path(company_id)
        if not path.is_file():
            return True
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return int(conn.execute("PRAGMA user_version").fetchone()[0]) == CHUNK_FORMAT
        finally:
            conn.close()

    def upgrade_all(self) -> list[str]:
        """Re-chunk every store of an older chunk format; the companies upgraded."""
        if not self._root.is_dir():
            return []
        stale = [
            path.stem
            for path in sorted(self._root.glob("*.sqlite3"))
            if _ID_RE.fullmatch(path.stem) and not self.is_current(path.stem)
        ]
        for company_id in stale:
            self._open_for_write(company_id).close()
        return stale

    def _open_for_write(self, company_id: str) -> sqlite3.Connection:
        path = self._path(company_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path)
        if int(conn.execute("PRAGMA user_version").fetchone()[0]) != CHUNK_FORMAT:
            self._rebuild(conn)
        conn.executescript(_SCHEMA)
        return conn

    def _rebuild(self, conn: sqlite3.Connection) -> None:
        """Re-chunk a store written in an older format from its own chunks, which hold every
        line of each document in order (format 1 packed whole paragraphs and heading lines)."""
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        documents: list[tuple[str, str, str]] = []
        if {"documents", "chunks"} <= tables:
            for doc_id, title in conn.execute("SELECT doc_id, title FROM documents").fetchall():
                parts = conn.execute(
                    "SELECT text FROM chunks WHERE doc_id = ? ORDER BY rowid", (doc_id,)
                ).fetchall()
                documents.append((doc_id, title, "\n\n".join(part for (part,) in parts)))
        with conn:
            conn.execute("DROP TABLE IF EXISTS chunks")
            conn.execute("DROP TABLE IF EXISTS documents")
        conn.executescript(_SCHEMA)
        with conn:
            for doc_id, title, text in documents:
                self._replace(conn, doc_id, title, text)

    def _open_existing(self, company_id: str) -> sqlite3.Connection | None:
        # Reads never create a store: an unknown tenant simply has no documents.
        path = self._path(company_id)
        if not path.is_file():
            return None
        if not self.is_current(company_id):
            self._open_for_write(company_id).close()  # written by an older version: re-chunk
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def seed_documents(store: SqliteDocumentStore, demo_docs_root: Path) -> dict[str, int]:
    """Ingest `<root>/<company_id>/*.md` for every company directory; chunk counts per company."""
    counts: dict[str, int] = {}
    for directory in sorted(p for p in Path(demo_docs_root).iterdir() if p.is_dir()):
        if _ID_RE.fullmatch(directory.name):
            counts[directory.name] = store.ingest_directory(directory.name, directory)
    return counts
