"""Per-tenant document store: BM25 over SQLite FTS5, one database file per company.

Separate files (not a shared table with a tenant filter) mean no query can forget the filter and
the ranking statistics (IDF) of one tenant never depend on another tenant's documents.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from agent_service.providers.base import Passage
from contracts.agent_api import ID_PATTERN, MAX_ID_CHARS

_ID_RE: Final = re.compile(ID_PATTERN)
_DOC_ID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")
_TERM_RE: Final = re.compile(r"\w+", re.UNICODE)
_HEADING_RE: Final = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")

MAX_QUERY_TERMS: Final = 32
MAX_K: Final = 50
# Words that carry no meaning for retrieval, plus FTS5's own operators (which we never pass on).
_STOP_WORDS: Final = frozenset(
    {
        "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "how",
        "i", "if", "in", "is", "it", "me", "my", "near", "not", "of", "on", "or", "our", "show",
        "tell", "that", "the", "their", "them", "there", "this", "to", "us", "we", "what", "when",
        "where", "which", "who", "why", "will", "with", "you", "your", "about", "any", "please",
        "give", "list", "get", "much", "many",
    }
)  # fmt: skip

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    chunk_count INTEGER NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks USING fts5(
    chunk_id UNINDEXED, doc_id UNINDEXED, title, text, tokenize = 'porter unicode61'
);
"""


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    doc_id: str
    title: str
    chunk_count: int


@dataclass(frozen=True, slots=True)
class ChunkLimits:
    """Chunks are packed from whole paragraphs up to `max_chars`, and cut at a heading once at
    least `min_chars` long."""

    min_chars: int = 600
    max_chars: int = 900


class SqliteDocumentStore:
    """BM25 retrieval over each company's own documents, in `<root>/<company_id>.sqlite3`."""

    def __init__(self, root: Path, chunking: ChunkLimits | None = None) -> None:
        self._root = Path(root)
        self._chunking = chunking or ChunkLimits()

    def ingest(self, company_id: str, doc_id: str, title: str, text: str) -> int:
        """Store (or replace) one document for `company_id`; return how many chunks it became."""
        if not _DOC_ID_RE.fullmatch(doc_id):
            raise ValueError("doc_id must be 1-128 letters, digits or _ . : @ -")
        title = title.strip() or doc_id
        chunks = chunk_text(text, self._chunking)
        conn = self._open_for_write(company_id)
        try:
            with conn:
                conn.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
                conn.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))
                conn.executemany(
                    "INSERT INTO chunks (chunk_id, doc_id, title, text) VALUES (?, ?, ?, ?)",
                    [(f"{doc_id}#{i}", doc_id, title, chunk) for i, chunk in enumerate(chunks)],
                )
                conn.execute(
                    "INSERT INTO documents (doc_id, title, chunk_count) VALUES (?, ?, ?)",
                    (doc_id, title, len(chunks)),
                )
        finally:
            conn.close()
        return len(chunks)

    def ingest_directory(self, company_id: str, path: Path) -> int:
        """Ingest every `*.md` file under `path` (doc id = file stem, title = first heading)."""
        total = 0
        for file in sorted(Path(path).glob("*.md")):
            text = file.read_text(encoding="utf-8")
            total += self.ingest(company_id, file.stem, _first_heading(text) or file.stem, text)
        return total

    async def search(self, company_id: str, query: str, k: int = 4) -> list[Passage]:
        """The `k` best passages of `company_id`'s documents for `query` (free text, any chars)."""
        return await asyncio.to_thread(self._search, company_id, query, k)

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
            return deleted.rowcount > 0
        finally:
            conn.close()

    def _search(self, company_id: str, query: str, k: int) -> list[Passage]:
        k = max(1, min(int(k), MAX_K))
        match = fts_query(query)
        if not match:
            return []
        conn = self._open_existing(company_id)
        if conn is None:
            return []
        try:
            rows = conn.execute(
                # bm25() is lower-is-better; title matches weigh double.
                "SELECT chunk_id, doc_id, title, text, bm25(chunks, 0.0, 0.0, 2.0, 1.0) AS rank"
                " FROM chunks WHERE chunks MATCH ? ORDER BY rank LIMIT ?",
                (match, k),
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

    def _open_for_write(self, company_id: str) -> sqlite3.Connection:
        path = self._path(company_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path)
        conn.executescript(_SCHEMA)
        return conn

    def _open_existing(self, company_id: str) -> sqlite3.Connection | None:
        # Reads never create a store: an unknown tenant simply has no documents.
        path = self._path(company_id)
        if not path.is_file():
            return None
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def fts_query(text: str) -> str:
    """Turn free text into a safe FTS5 query: quoted content words joined by OR ('' if none)."""
    terms: list[str] = []
    for word in _TERM_RE.findall(text.lower()):
        if word in _STOP_WORDS or word in terms or word == "_":
            continue
        terms.append(word)
        if len(terms) == MAX_QUERY_TERMS:
            break
    # \\w+ never contains a double quote, so quoting makes every term a plain string token.
    return " OR ".join(f'"{term}"' for term in terms)


def chunk_text(text: str, limits: ChunkLimits) -> list[str]:
    """Split markdown into chunks of whole paragraphs, cut at headings once big enough."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for block, is_heading in _blocks(text):
        for piece in _split_long(block, limits.max_chars):
            cut_here = is_heading and size >= limits.min_chars
            if current and (cut_here or size + len(piece) + 2 > limits.max_chars):
                chunks.append("\n\n".join(current))
                current, size = [], 0
            current.append(piece)
            size += len(piece) + 2
    if current:
        chunks.append("\n\n".join(current))
    return chunks


def _blocks(text: str) -> Iterator[tuple[str, bool]]:
    """Paragraphs (blank-line separated) and heading lines, in order."""
    paragraph: list[str] = []
    for line in text.splitlines():
        if _HEADING_RE.match(line):
            if paragraph:
                yield "\n".join(paragraph), False
                paragraph = []
            yield line.strip(), True
        elif line.strip():
            paragraph.append(line.rstrip())
        elif paragraph:
            yield "\n".join(paragraph), False
            paragraph = []
    if paragraph:
        yield "\n".join(paragraph), False


def _split_long(block: str, max_chars: int) -> Iterator[str]:
    """A block longer than `max_chars`, cut at word boundaries."""
    while len(block) > max_chars:
        cut = block.rfind(" ", 0, max_chars)
        cut = cut if cut > 0 else max_chars
        yield block[:cut].rstrip()
        block = block[cut:].lstrip()
    if block:
        yield block


def _first_heading(text: str) -> str | None:
    for line in text.splitlines():
        match = _HEADING_RE.match(line)
        if match:
            return match.group(2).strip() or None
    return None


def seed_documents(store: SqliteDocumentStore, demo_docs_root: Path) -> dict[str, int]:
    """Ingest `<root>/<company_id>/*.md` for every company directory; chunk counts per company."""
    counts: dict[str, int] = {}
    for directory in sorted(p for p in Path(demo_docs_root).iterdir() if p.is_dir()):
        if _ID_RE.fullmatch(directory.name):
            counts[directory.name] = store.ingest_directory(directory.name, directory)
    return counts
