"""A fresh PostgreSQL database per test module on the local server (never skipped: tests fail,
with the command that starts the server, when it is down)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql

PG_HOST = "127.0.0.1"
PG_PORT = 5432
ADMIN_DSN = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres"
DOWN_MESSAGE = (
    f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT} — start it with: "
    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
)


def dsn_for(database: str, user: str = "postgres") -> str:
    return f"postgresql://{user}@{PG_HOST}:{PG_PORT}/{database}"


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        pytest.fail(DOWN_MESSAGE, pytrace=False)


@contextmanager
def fresh_database(prefix: str = "agent_test") -> Iterator[str]:
    """Create `<prefix>_<random>`, yield its name, drop it (and its sessions) afterwards."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    with _admin() as admin:
        # C collation: text sorts by code point, as in SQLite, so both engines order alike
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'").format(
                sql.Identifier(name)
            )
        )
    try:
        yield name
    finally:
        with _admin() as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
