"""Per-tenant documents in PostgreSQL full-text search: tsvector + GIN, ranked by ts_rank.

Every statement filters on the company explicitly and runs with `app.tenant_id` set, so
row-level security confines it a second time. Ranking statistics are per row (ts_rank has no
corpus-wide IDF), so one tenant's documents never change another tenant's scores.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg import sql

from agent_service.providers.base import Passage
from agent_service.storage.chunks import CHUNK_FORMAT, ChunkLimits, chunk_sections
from agent_service.storage.query import search_query
from agent_service.storage.sqlite.documents import (
    HEADING_WEIGHT,
    MAX_K,
    TITLE_WEIGHT,
    DocumentInfo,
)
from contracts.agent_api import ID_PATTERN, MAX_ID_CHARS

_ID_RE: Final = re.compile(ID_PATTERN)
_DOC_ID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")
_HEADING_RE: Final = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)

# ts_rank's weights are {D, C, B, A} in [0, 1]: body (D) 1, title (B) 2, heading (A) 3, scaled
# by the heading's weight, the same proportions as the FTS5 store's bm25() column weights
_WEIGHTS: Final = (1.0 / HEADING_WEIGHT, 0.0, TITLE_WEIGHT / HEADING_WEIGHT, 1.0)
_SEARCH: Final = """
SELECT chunk_id, doc_id, title, body, ts_rank(%(weights)s::float4[], search, query) AS rank
FROM document_chunks, websearch_to_tsquery('english', %(query)s) AS query
WHERE company_id = %(company)s AND search @@ query
ORDER BY rank DESC, doc_id, split_part(chunk_id, '#', 2)::integer
LIMIT %(k)s
"""

ConnectionSource = Callable[[], AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]]


def _check_company(company_id: str) -> None:
    if not (0 < len(company_id) <= MAX_ID_CHARS and _ID_RE.fullmatch(company_id)):
        raise ValueError("company_id does not match the contract's id pattern")


@asynccontextmanager
async def tenant_transaction(
    conn: psycopg.AsyncConnection[Any], company_id: str, *, read_only: bool = False
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A transaction on `conn` where row-level security sees `company_id` only."""
    _check_company(company_id)
    async with conn.transaction():
        if read_only:
            await conn.execute("SET TRANSACTION READ ONLY")
        # SET LOCAL, not set_config(): EXECUTE on set_config is revoked (see 0002)
        await conn.execute(
            sql.SQL("SET LOCAL app.tenant_id = {}").format(sql.Literal(company_id)).as_string(conn)
        )
        yield conn


class PostgresDocumentStore:
    """Ranked full-text retrieval over each company's own documents in PostgreSQL."""

    def __init__(self, connect: ConnectionSource, chunking: ChunkLimits | None = None) -> None:
        self._connect = connect
        self._chunking = chunking or ChunkLimits()

    @classmethod
    def for_connection(cls, conn: psycopg.AsyncConnection[Any]) -> PostgresDocumentStore:
        """A store over one open (autocommit) connection, e.g. the migrator's."""

        @asynccontextmanager
        async def borrow() -> AsyncIterator[psycopg.AsyncConnection[Any]]:
            yield conn

        return cls(borrow)

    async def ingest(self, company_id: str, doc_id: str, title: str, text: str) -> int:
        """Store (or replace) one document for `company_id`; return how many chunks it became."""
        if not _DOC_ID_RE.fullmatch(doc_id):
            raise ValueError("doc_id must be 1-128 letters, digits or _ . : @ -")
        title = title.strip() or doc_id
        async with self._connect() as conn, tenant_transaction(conn, company_id):
            return await self._replace(conn, company_id, doc_id, title, text)

    async def _replace(
        self,
        conn: psycopg.AsyncConnection[Any],
        company_id: str,
        doc_id: str,
        title: str,
        text: str,
    ) -> int:
        chunks = chunk_sections(text, self._chunking, title)
        await conn.execute(
            "DELETE FROM documents WHERE company_id = %s AND doc_id = %s", (company_id, doc_id)
        )
        await conn.execute(
            "INSERT INTO documents (company_id, doc_id, title, chunk_count, chunk_format)"
            " VALUES (%s, %s, %s, %s, %s)",
            (company_id, doc_id, title, len(chunks), CHUNK_FORMAT),
        )
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO document_chunks (company_id, chunk_id, doc_id, title, heading, body)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                [
                    (company_id, f"{doc_id}#{i}", doc_id, title, chunk.heading, chunk.text)
                    for i, chunk in enumerate(chunks)
                ],
            )
        return len(chunks)

    async def rechunk(self, company_id: str) -> int:
        """Re-chunk `company_id`'s documents written in an older chunk format from their own
        chunks (which hold every line of the document, in order); how many were re-chunked."""
        async with self._connect() as conn, tenant_transaction(conn, company_id):
            cursor = await conn.execute(
                "SELECT d.doc_id, d.title,"
                " string_agg(c.body, E'\\n\\n' ORDER BY split_part(c.chunk_id, '#', 2)::integer)"
                " FROM documents d JOIN document_chunks c USING (company_id, doc_id)"
                " WHERE d.company_id = %s AND d.chunk_format <> %s GROUP BY d.doc_id, d.title",
                (company_id, CHUNK_FORMAT),
            )
            stale = await cursor.fetchall()
            for doc_id, title, text in stale:
                await self._replace(conn, company_id, doc_id, title, text)
        return len(stale)

    async def ingest_directory(self, company_id: str, path: Path) -> int:
        """Ingest every `*.md` file under `path` (doc id = file stem, title = first heading)."""
        total = 0
        for doc_id, title, text in await asyncio.to_thread(read_markdown, Path(path)):
            total += await self.ingest(company_id, doc_id, title, text)
        return total

    async def search(self, company_id: str, query: str, k: int = 4) -> list[Passage]:
        """The `k` best passages of `company_id`'s documents for `query` (free text, any chars)."""
        k = max(1, min(int(k), MAX_K))
        # the same query as the FTS5 store (question + intent words, as quoted \w+ terms joined
        # by OR), which websearch_to_tsquery reads as phrases and alternatives, never operators
        match = search_query(query)
        if not match:
            return []
        params = {"weights": list(_WEIGHTS), "query": match, "company": company_id, "k": k}
        async with self._connect() as conn, tenant_transaction(conn, company_id, read_only=True):
            cursor = await conn.execute(_SEARCH, params)
            rows = await cursor.fetchall()
        return [
            Passage(doc_id=doc_id, title=title, chunk_id=chunk_id, text=body, score=float(rank))
            for chunk_id, doc_id, title, body, rank in rows
        ]

    async def list_documents(self, company_id: str) -> list[DocumentInfo]:
        """The documents stored for `company_id`, by doc id."""
        async with self._connect() as conn, tenant_transaction(conn, company_id, read_only=True):
            cursor = await conn.execute(
                "SELECT doc_id, title, chunk_count FROM documents WHERE company_id = %s"
                " ORDER BY doc_id",
                (company_id,),
            )
            rows = await cursor.fetchall()
        return [DocumentInfo(doc_id, title, count) for doc_id, title, count in rows]

    async def delete_document(self, company_id: str, doc_id: str) -> bool:
        """Remove one document of `company_id` (its chunks cascade); return whether it existed."""
        async with self._connect() as conn, tenant_transaction(conn, company_id):
            cursor = await conn.execute(
                "DELETE FROM documents WHERE company_id = %s AND doc_id = %s", (company_id, doc_id)
            )
            return bool(cursor.rowcount > 0)

    async def has_any_document(self, company_ids: tuple[str, ...]) -> bool:
        """Whether any of `company_ids` has a document (RLS hides the others' rows)."""
        for company_id in company_ids:
            if await self.list_documents(company_id):
                return True
        return False


async def seed_postgres_documents(
    store: PostgresDocumentStore, demo_docs_root: Path
) -> dict[str, int]:
    """Ingest `<root>/<company_id>/*.md` for every company directory; chunk counts per company."""
    directories = await asyncio.to_thread(
        lambda: sorted(p for p in Path(demo_docs_root).iterdir() if p.is_dir())
    )
    counts: dict[str, int] = {}
    for directory in directories:
        if _ID_RE.fullmatch(directory.name):
            counts[directory.name] = await store.ingest_directory(directory.name, directory)
    return counts


def read_markdown(path: Path, pattern: str = "*.md") -> list[tuple[str, str, str]]:
    """(doc id = file stem, title = first heading, text) of every file of `path` matching
    `pattern`, by name."""
    found: list[tuple[str, str, str]] = []
    for file in sorted(path.glob(pattern)):
        text = file.read_text(encoding="utf-8")
        heading = _HEADING_RE.search(text)
        title = heading.group(1).strip() if heading else ""
        found.append((file.stem, title or file.stem, text))
    return found
