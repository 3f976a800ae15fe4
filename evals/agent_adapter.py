"""The only module of `evals` that imports `agent_service`: fix its imports here when modules move.

The harness needs the demo data generator (ground truth is computed from a freshly seeded copy),
the app factory (the default in-process target) and both document stores (retrieval recall).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from starlette.types import ASGIApp

from agent_service.app import create_app
from agent_service.demo.data import COMPANIES, DEMO_DOCS_DIR, DEMO_TODAY, TRAP_VALUES, seed_database
from agent_service.deps import seed_demo
from agent_service.settings import DEV_INTERNAL_SECRET, AgentSettings
from agent_service.storage.postgres.documents import (
    PostgresDocumentStore,
    seed_postgres_documents,
)
from agent_service.storage.postgres.migrate import migrate
from agent_service.storage.sqlite.documents import SqliteDocumentStore

__all__ = [
    "COMPANY_NAMES",
    "DEMO_DOCS_DIR",
    "DEMO_TODAY",
    "DEV_INTERNAL_SECRET",
    "TRAP_VALUES",
    "Hit",
    "Searcher",
    "build_agent_app",
    "pg_searcher",
    "seed_demo_database",
    "sqlite_searcher",
]

COMPANY_NAMES: dict[str, str] = {c.id: c.name for c in COMPANIES}


@dataclass(frozen=True, slots=True)
class Hit:
    """One retrieved passage, engine-neutral."""

    doc_id: str
    chunk_id: str
    text: str


Searcher = Callable[[str, str, int], Awaitable[list[Hit]]]
"""`(company_id, query, k) -> passages`, best first."""


def seed_demo_database(path: Path) -> Path:
    """A fresh demo SQLite database at `path` (the same generator the app seeds from)."""
    return seed_database(path).path


def build_agent_app(data_dir: Path) -> tuple[ASGIApp, Path]:
    """The agent service app on embedded defaults in `data_dir` (seeded now), and its demo
    database. The provider and model come from the usual `AGENT_*` environment (offline unless
    `AGENT_PROVIDER=openai`)."""
    settings = AgentSettings(
        data_dir=data_dir, env="test", seed_on_start=False, log_level="warning"
    )
    seed_demo(settings, force=True)
    return create_app(settings), settings.demo_db_path


def sqlite_searcher(root: Path) -> Searcher:
    """The embedded FTS5 store, seeded with the demo documents under `root`."""
    store = SqliteDocumentStore(root)
    for directory in sorted(p for p in DEMO_DOCS_DIR.iterdir() if p.is_dir()):
        store.ingest_directory(directory.name, directory)

    async def search(company_id: str, query: str, k: int) -> list[Hit]:
        found = await store.search(company_id, query, k)
        return [Hit(p.doc_id, p.chunk_id, p.text) for p in found]

    return search


@asynccontextmanager
async def pg_searcher(dsn: str) -> AsyncIterator[Searcher]:
    """The PostgreSQL full-text store on `dsn` (an empty database): migrated, the demo documents
    ingested, searched over one connection."""

    async def seed(conn: psycopg.AsyncConnection[Any]) -> None:
        await seed_postgres_documents(PostgresDocumentStore.for_connection(conn), DEMO_DOCS_DIR)

    await migrate(dsn, then=seed)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        store = PostgresDocumentStore.for_connection(conn)

        async def search(company_id: str, query: str, k: int) -> list[Hit]:
            found = await store.search(company_id, query, k)
            return [Hit(p.doc_id, p.chunk_id, p.text) for p in found]

        yield search
