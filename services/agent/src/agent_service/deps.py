"""The service's resources, opened for the app's lifespan: `open_deps(settings)`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from langgraph.checkpoint.base import BaseCheckpointSaver
from opentelemetry.trace import Tracer

from agent_service.demo.data import DEMO_DOCS_DIR, seed_database
from agent_service.graph.state import DocumentSearch, SqlRunner
from agent_service.providers.base import ModelProvider, SchemaTable
from agent_service.providers.offline.provider import OfflineProvider
from agent_service.providers.openai.config import openai_config
from agent_service.providers.openai.provider import OpenAIProvider
from agent_service.runs.registry import RunRegistry
from agent_service.settings import AgentSettings
from agent_service.sql.executor import SqliteExecutor, SqlLimits
from agent_service.sql.schema import curated_schema
from agent_service.storage.embeddings import hybrid_for
from agent_service.storage.postgres.backends import open_postgres_backends
from agent_service.storage.sqlite.conversations import (
    ConversationOwnership,
    SqliteConversationStore,
)
from agent_service.storage.sqlite.documents import SqliteDocumentStore, seed_documents
from agent_service.storage.sqlite.memory import open_memory
from contracts.tracing import NO_TRACER

log = structlog.get_logger("agent_service.deps")


@dataclass(slots=True)
class Deps:
    """Everything a run needs besides its identity. Tests build one with their own parts."""

    provider: ModelProvider
    sql: SqlRunner
    documents: DocumentSearch
    schema: Sequence[SchemaTable]
    checkpointer: BaseCheckpointSaver[Any]
    conversations: ConversationOwnership
    active_runs: RunRegistry | None = None
    """Busy conversations shared by replicas (Postgres); None: this process only."""


def sql_limits(settings: AgentSettings) -> SqlLimits:
    """The SQL path's caps from `AGENT_SQL_*`: built here once for every engine."""
    return SqlLimits(
        max_rows=settings.sql_max_rows,
        max_result_bytes=settings.sql_max_result_bytes,
        timeout_s=settings.sql_timeout_s,
        max_expanded_nodes=settings.sql_max_expanded_nodes,
        engine_workers=settings.sql_engine_workers,
        engine_memory_bytes=settings.sql_engine_memory_mb * 1024 * 1024,
    )


def make_provider(settings: AgentSettings, tracer: Tracer = NO_TRACER) -> ModelProvider:
    """The configured model provider; an `OpenAIProvider` owns a connection pool (`aclose`)
    and traces its model calls with `tracer`."""
    if settings.provider == "offline":
        return OfflineProvider(pace_s=settings.offline_pace_ms / 1000)
    if settings.provider == "openai":
        return OpenAIProvider(openai_config(settings), tracer=tracer)
    raise ValueError(f"AGENT_PROVIDER={settings.provider!r} is not available in this build")


def seed_demo(settings: AgentSettings, *, force: bool = False) -> dict[str, Any]:
    """Create the demo database and document stores (when missing, or always with `force`)."""
    report: dict[str, Any] = {}
    if force or not settings.demo_db_path.exists():
        settings.demo_db_path.parent.mkdir(parents=True, exist_ok=True)
        report["database"] = seed_database(settings.demo_db_path)
    hybrid = hybrid_for(settings)
    store = SqliteDocumentStore(settings.documents_dir, hybrid=hybrid)
    vectors_missing = hybrid is not None and not (settings.documents_dir / "vectors").exists()
    try:
        if force or not settings.documents_dir.exists() or vectors_missing:
            report["documents"] = seed_documents(store, DEMO_DOCS_DIR)
        elif upgraded := store.upgrade_all():
            # stores written in an older chunk format, re-chunked from their own text
            report["documents_rechunked"] = upgraded
    finally:
        if hybrid is not None:
            hybrid.close()
    return report


@asynccontextmanager
async def open_deps(settings: AgentSettings, tracer: Tracer = NO_TRACER) -> AsyncIterator[Deps]:
    """Open the embedded defaults (demo SQLite, per-tenant FTS5 stores, SQLite memory), or the
    PostgreSQL backends when `AGENT_DATABASE_URL` is set."""
    if settings.database_url is not None:
        async with _open_postgres_deps(settings, tracer) as deps:
            yield deps
        return
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.seed_on_start:
        report = seed_demo(settings)
        if report:
            log.info("demo_data_seeded", data_dir=str(settings.data_dir))
    async with AsyncExitStack() as stack:
        # one connection for memory and conversations: one writer, no lock between them
        checkpointer = await stack.enter_async_context(
            open_memory(
                settings.memory_db_path,
                busy_timeout_s=settings.sqlite_busy_timeout_s,
                synchronous=settings.sqlite_synchronous,
            )
        )
        conversations = await SqliteConversationStore.sharing(checkpointer)
        provider = make_provider(settings, tracer)
        if isinstance(provider, OpenAIProvider):
            stack.push_async_callback(provider.aclose)
            if settings.model_startup_check:
                await provider.check_structured_output()
        hybrid = hybrid_for(settings)
        if hybrid is not None:
            stack.push_async_callback(hybrid.aclose)
        sql = SqliteExecutor(settings.demo_db_path, sql_limits(settings))
        stack.callback(sql.close)
        yield Deps(
            provider=provider,
            sql=sql,
            documents=SqliteDocumentStore(settings.documents_dir, hybrid=hybrid),
            schema=curated_schema(),
            checkpointer=checkpointer,
            conversations=conversations,
        )


@asynccontextmanager
async def _open_postgres_deps(settings: AgentSettings, tracer: Tracer) -> AsyncIterator[Deps]:
    async with AsyncExitStack() as stack:
        pg = await stack.enter_async_context(
            open_postgres_backends(settings, DEMO_DOCS_DIR, sql_limits(settings))
        )
        provider = make_provider(settings, tracer)
        if isinstance(provider, OpenAIProvider):
            stack.push_async_callback(provider.aclose)
            if settings.model_startup_check:
                await provider.check_structured_output()
        yield Deps(
            provider=provider,
            sql=pg.sql,
            documents=pg.documents,
            schema=curated_schema(),
            checkpointer=pg.checkpointer,
            conversations=pg.conversations,
            active_runs=pg.active_runs,
        )
