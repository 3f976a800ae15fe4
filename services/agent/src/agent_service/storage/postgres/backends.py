"""The PostgreSQL backends, opened for the app's lifespan when `AGENT_DATABASE_URL` is set."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import structlog
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from psycopg_pool import PoolTimeout

from agent_service.settings import AgentSettings
from agent_service.sql.executor import SqlLimits
from agent_service.storage.postgres.active_runs import PostgresActiveRuns
from agent_service.storage.postgres.conversations import PostgresConversationStore
from agent_service.storage.postgres.documents import PostgresDocumentStore
from agent_service.storage.postgres.migrate import migrate
from agent_service.storage.postgres.pool import DatabaseHealth, WatchedPool
from agent_service.storage.postgres.seed import seed_postgres
from agent_service.storage.postgres.sql_engine import PostgresExecutor, verify_reader_role

log = structlog.get_logger("agent_service.storage.postgres.backends")


@dataclass(frozen=True, slots=True)
class PostgresBackends:
    """The PostgreSQL implementations of the stores a `Deps` holds."""

    sql: PostgresExecutor
    documents: PostgresDocumentStore
    checkpointer: AsyncPostgresSaver
    conversations: PostgresConversationStore
    active_runs: PostgresActiveRuns


def database_dsn(settings: AgentSettings) -> str:
    """The application's DSN (`AGENT_DATABASE_URL`); raises if it is not set."""
    if settings.database_url is None:
        raise ValueError("AGENT_DATABASE_URL is not set")
    return settings.database_url.get_secret_value()


def reader_dsn(settings: AgentSettings) -> str:
    """The SQL path's DSN: `AGENT_SQL_DATABASE_URL`, else the same server as the reader role."""
    if settings.sql_database_url is not None:
        return settings.sql_database_url.get_secret_value()
    params = conninfo_to_dict(database_dsn(settings))
    params.pop("password", None)  # the owner's password is never the reader's
    params["user"] = settings.sql_reader_role
    return make_conninfo(**{k: str(v) for k, v in params.items() if v is not None})


async def migrate_and_seed(
    settings: AgentSettings, docs_root: Path, *, force: bool
) -> dict[str, Any]:
    """Apply migrations, then seed the demo data (when missing, or always with `force`)."""
    report: dict[str, Any] = {}

    async def seed(conn: psycopg.AsyncConnection[Any]) -> None:
        report.update(await seed_postgres(conn, docs_root, force=force))

    report["migrations"] = await migrate(database_dsn(settings), then=seed)
    return report


def _pool(dsn: str, settings: AgentSettings, health: DatabaseHealth, **kwargs: Any) -> WatchedPool:
    return WatchedPool(
        dsn,
        health=health,
        reconnect_timeout=settings.pg_reconnect_s,
        min_size=settings.pg_pool_min,
        max_size=settings.pg_pool_max,
        timeout=settings.pg_pool_timeout_s,
        kwargs={"autocommit": True, **kwargs},
    )


@asynccontextmanager
async def open_postgres_backends(
    settings: AgentSettings, docs_root: Path, limits: SqlLimits
) -> AsyncIterator[PostgresBackends]:
    """Migrate (and seed) as configured, then open the pools and the stores over them."""
    try:
        if settings.pg_migrate_on_start:
            if settings.seed_on_start:
                report = await migrate_and_seed(settings, docs_root, force=False)
            else:
                report = {"migrations": await migrate(database_dsn(settings))}
            log.info("postgres_ready", **{k: v for k, v in report.items() if v})
        async with _open_pools(settings, limits) as backends:
            yield backends
    except (PoolTimeout, psycopg.OperationalError) as exc:
        # one line that says what to fix, instead of a driver traceback at start-up
        raise DatabaseUnavailable(f"PostgreSQL is not reachable: {exc}") from None


class DatabaseUnavailable(RuntimeError):
    """AGENT_DATABASE_URL (or the SQL path's DSN) names a server that does not answer."""


@asynccontextmanager
async def _open_pools(
    settings: AgentSettings, limits: SqlLimits
) -> AsyncIterator[PostgresBackends]:
    async with AsyncExitStack() as stack:
        # one server: every pool reports to, and fails fast by, the same health
        health = DatabaseHealth(down_wait_s=settings.pg_down_wait_s)
        app_pool = _pool(database_dsn(settings), settings, health)
        # LangGraph's saver needs dict rows and no server-side prepared statements (poolers)
        memory_pool = _pool(
            database_dsn(settings), settings, health, prepare_threshold=0, row_factory=dict_row
        )
        sql_pool = WatchedPool(
            reader_dsn(settings),
            health=health,
            reconnect_timeout=settings.pg_reconnect_s,
            min_size=min(settings.pg_pool_min, settings.pg_sql_pool_max),
            max_size=settings.pg_sql_pool_max,
            timeout=settings.pg_pool_timeout_s,
            kwargs={"autocommit": True},
        )
        for pool in (app_pool, memory_pool, sql_pool):
            await pool.open(wait=True, timeout=settings.pg_pool_timeout_s)
            stack.push_async_callback(pool.close)
        await verify_reader_role(sql_pool.connection)
        active = PostgresActiveRuns(
            app_pool, lease_s=settings.run_lease_s, wait_s=settings.busy_wait_s
        )
        await active.start()
        stack.push_async_callback(active.aclose)
        yield PostgresBackends(
            sql=PostgresExecutor(
                sql_pool,
                limits,
            ),
            documents=PostgresDocumentStore(app_pool.connection),
            checkpointer=AsyncPostgresSaver(memory_pool),
            conversations=PostgresConversationStore(app_pool),
            active_runs=active,
        )
