"""PostgreSQL migrations: applied once each, in order, by a command; safe when replicas start at the
same time (advisory lock); an edited applied migration is refused."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import psycopg
import pytest
from support.pg_database import dsn_for, fresh_database

from agent_service.cli import main
from agent_service.deps import open_deps
from agent_service.settings import AgentSettings
from agent_service.storage.postgres.migrate import (
    MIGRATIONS_DIR,
    MigrationError,
    advisory_lock,
    load_migrations,
    migrate,
)

pytestmark = pytest.mark.postgres

ALL = [m.name for m in load_migrations()]


def ledger(database: str) -> list[str]:
    with psycopg.connect(dsn_for(database)) as conn:
        return [r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY version")]


async def test_migrate_applies_every_file_once_in_order() -> None:
    with fresh_database() as name:
        assert await migrate(dsn_for(name)) == ALL
        assert await migrate(dsn_for(name)) == []
        assert ledger(name) == ALL
        with psycopg.connect(dsn_for(name)) as conn:
            tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables")}
        assert {"jobs", "document_chunks", "conversations", "active_runs", "checkpoints"} <= tables


async def test_replicas_starting_together_migrate_once() -> None:
    with fresh_database() as name:
        results = await asyncio.gather(*(migrate(dsn_for(name)) for _ in range(4)))
        assert sorted(results, key=len) == [[], [], [], ALL]
        assert ledger(name) == ALL


async def test_replicas_starting_together_on_an_empty_database_seed_it_once(
    tmp_path: Path,
) -> None:
    with fresh_database() as name:
        settings = AgentSettings(
            env="test",
            data_dir=tmp_path,
            database_url=dsn_for(name),
        )

        async def start_and_ask() -> tuple[tuple[Any, ...], ...]:
            async with open_deps(settings) as deps:
                return (await deps.sql.run("acme-hvac", "SELECT count(*) FROM jobs")).rows

        # gather's result is a list at run time (typeshed says tuple)
        assert list(await asyncio.gather(start_and_ask(), start_and_ask())) == [
            ((260,),),
            ((260,),),
        ]
        with psycopg.connect(dsn_for(name)) as conn:
            assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (780,)


async def test_two_databases_on_one_server_migrate_together() -> None:
    # the reader role is cluster-wide: both must get it without a duplicate-role error
    with fresh_database() as first, fresh_database() as second:
        assert list(await asyncio.gather(migrate(dsn_for(first)), migrate(dsn_for(second)))) == [
            ALL,
            ALL,
        ]


async def test_a_migrator_waits_for_the_lock_holder() -> None:
    with fresh_database() as name:
        async with advisory_lock(dsn_for(name)):
            waiting = asyncio.create_task(migrate(dsn_for(name)))
            await _until_a_second_session_tried_the_lock(name)
            assert not waiting.done()
            with psycopg.connect(dsn_for(name)) as conn:
                assert conn.execute("SELECT to_regclass('jobs')").fetchone() == (None,)
        assert await waiting == ALL


async def _until_a_second_session_tried_the_lock(database: str) -> None:
    for _ in range(500):
        with psycopg.connect(dsn_for(database)) as conn:
            tried = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND query LIKE 'SELECT pg_try_advisory_lock%%'"
            ).fetchone()
        if tried and tried[0]:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the second migrator never tried the lock")


async def test_an_edited_applied_migration_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, copy)
    with fresh_database() as name:
        await migrate(dsn_for(name), directory=copy)
        first = sorted(copy.glob("0001_*.sql"))[0]
        first.write_text(first.read_text() + "\n-- edited\n")
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await migrate(dsn_for(name), directory=copy)


async def test_a_new_migration_file_is_applied_after_the_others(tmp_path: Path) -> None:
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, copy)
    with fresh_database() as name:
        await migrate(dsn_for(name), directory=copy)
        number = len(ALL) + 1
        (copy / f"{number:04d}_add_note.sql").write_text("ALTER TABLE jobs ADD COLUMN memo text;")
        assert await migrate(dsn_for(name), directory=copy) == [f"{number:04d}_add_note"]
        assert ledger(name)[-1] == f"{number:04d}_add_note"


@pytest.mark.parametrize(
    ("files", "error"),
    [
        (["0001_a.sql", "0003_c.sql"], "expected version 0002"),
        (["0001_a.sql", "1_b.sql"], "named NNNN_lower_case.sql"),
    ],
)
def test_misnumbered_files_are_refused(tmp_path: Path, files: list[str], error: str) -> None:
    for file in files:
        (tmp_path / file).write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=error):
        load_migrations(tmp_path)


def test_the_migrate_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with fresh_database() as name:
        monkeypatch.setenv("AGENT_DATABASE_URL", dsn_for(name))
        assert main(["migrate"]) == 0
        assert f"applied {len(ALL)} migration(s)" in capsys.readouterr().out
        assert main(["migrate"]) == 0
        assert "applied 0 migration(s)" in capsys.readouterr().out


def test_the_migrate_command_without_a_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENT_DATABASE_URL", raising=False)
    with pytest.raises(SystemExit, match="set AGENT_DATABASE_URL"):
        main(["migrate"])


def test_the_seed_command_seeds_postgres(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with fresh_database() as name:
        monkeypatch.setenv("AGENT_DATABASE_URL", dsn_for(name))
        assert main(["seed"]) == 0
        assert "seeded the demo data into PostgreSQL" in capsys.readouterr().out
        assert main(["seed"]) == 0  # reseeding replaces, never duplicates
        with psycopg.connect(dsn_for(name)) as conn:
            counts = conn.execute(
                "SELECT company_id, count(*) FROM jobs GROUP BY company_id ORDER BY 1"
            ).fetchall()
            docs = conn.execute("SELECT count(DISTINCT company_id) FROM documents").fetchone()
        assert counts == [
            ("acme-hvac", 260),
            ("bluepeak-plumbing", 180),
            ("citywide-electric", 340),
        ]
        assert docs == (3,)
