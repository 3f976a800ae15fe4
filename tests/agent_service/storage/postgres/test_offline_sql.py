"""One statement, the same answer on both engines: every SQL shape the offline provider documents
(docs/offline-provider.md) returns the same rows from PostgreSQL as from SQLite, per company."""

from __future__ import annotations

import asyncio
import math
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from support.pg_database import dsn_for, fresh_database

from agent_service.demo.data import DEMO_DOCS_DIR, seed_database
from agent_service.providers.base import AskContext, SqlDraft, UsageMeter
from agent_service.providers.offline.provider import OfflineProvider
from agent_service.sql.executor import SqliteExecutor, SqlLimits
from agent_service.sql.schema import curated_schema
from agent_service.storage.postgres.migrate import migrate
from agent_service.storage.postgres.seed import seed_postgres
from agent_service.storage.postgres.sql_engine import PostgresExecutor

pytestmark = pytest.mark.postgres

DOC = Path(__file__).resolve().parents[4] / "docs" / "offline-provider.md"
EXAMPLES = re.findall(r"^\| \d+ \| [^|]+ \| (.+?) \|$", DOC.read_text(encoding="utf-8"), re.M)
TENANTS = ("acme-hvac", "citywide-electric")


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with fresh_database() as name:

        async def prepare() -> None:
            async def seed(conn: psycopg.AsyncConnection[Any]) -> None:
                await seed_postgres(conn, DEMO_DOCS_DIR, force=True)

            await migrate(dsn_for(name), then=seed)

        asyncio.run(prepare())
        yield name


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return seed_database(tmp_path_factory.mktemp("pg-offline") / "demo.db").path


def normalised(rows: tuple[tuple[Any, ...], ...]) -> Counter[tuple[Any, ...]]:
    """Rows as a multiset, numbers compared as floats to 6 places (int vs float, numeric)."""

    def value(v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int | float):
            return v
        return round(float(v), 6) if math.isfinite(float(v)) else v

    return Counter(tuple(value(v) for v in row) for row in rows)


def test_the_doc_lists_examples() -> None:
    assert len(EXAMPLES) >= 40


@pytest.mark.parametrize("question", EXAMPLES)
async def test_each_documented_example_gives_the_same_rows_on_both_engines(
    question: str, database: str, sqlite_db: Path
) -> None:
    ask = AskContext(question, (), {}, UsageMeter())
    drafted = await OfflineProvider().draft_sql(ask, curated_schema(), ())
    assert isinstance(drafted, SqlDraft), drafted
    limits = SqlLimits(max_rows=1000)
    postgres = PostgresExecutor(dsn_for(database, "agent_sql_reader"), limits)
    sqlite = SqliteExecutor(sqlite_db, limits)
    for tenant in TENANTS:
        expected = await sqlite.run(tenant, drafted.sql)
        got = await postgres.run(tenant, drafted.sql)
        assert got.row_count == expected.row_count, drafted.sql
        assert normalised(got.rows) == normalised(expected.rows), drafted.sql
