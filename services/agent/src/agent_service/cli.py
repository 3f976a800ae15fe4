"""`agent-service`: serve, migrate, reseed the demo data, ingest documents, mint a dev token."""

from __future__ import annotations

import argparse
import atexit
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from agent_service.settings import AgentSettings
from contracts.internal_token import MAX_INTERNAL_TTL_S, mint_internal_token

if TYPE_CHECKING:
    from starlette.applications import Starlette


def _settings() -> AgentSettings:
    try:
        return AgentSettings()
    except ValidationError as exc:
        sys.exit(f"agent-service: invalid settings:\n{exc}")


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _settings()
    if args.port is not None:
        settings = settings.model_copy(update={"port": args.port})
    workers: int = args.workers
    if workers > 1 and settings.database_url is None:
        # conversation leases, checkpoints and memory must be shared by every worker: SQLite's
        # in-process lease would let two workers run one conversation at once
        sys.exit(
            "agent-service serve: --workers above 1 needs AGENT_DATABASE_URL (PostgreSQL); "
            "the SQLite defaults are one process"
        )
    common: dict[str, Any] = {
        "host": args.host or settings.host,
        "port": settings.port,
        "log_level": "warning",
        "access_log": False,
        "timeout_graceful_shutdown": 5,
        "timeout_keep_alive": settings.keepalive_s,
        "lifespan": "on",
    }
    if workers == 1:
        uvicorn.run(worker_app(settings), **common)
    else:
        # uvicorn's pre-fork supervisor: each worker imports and builds its own app
        uvicorn.run("agent_service.cli:worker_app", factory=True, workers=workers, **common)
    return 0


def _workers(value: str) -> int:
    if value == "auto":
        return os.cpu_count() or 1
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of workers: {value!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError("--workers must be at least 1")
    return count


def worker_app(settings: AgentSettings | None = None) -> Starlette:
    """The app one serving process runs, with its logging configured (also uvicorn's factory)."""
    from agent_service.app import create_app
    from agent_service.logs import configure_logging

    settings = settings or _settings()
    configure_logging(json_logs=settings.json_logs, level=settings.log_level)
    return create_app(settings, freeze_heap=True)


def _seed(_: argparse.Namespace) -> int:
    from agent_service.deps import seed_demo

    settings = _settings()
    if settings.database_url is not None:
        return _seed_postgres(settings)
    report = seed_demo(settings, force=True)
    print(f"seeded demo data into {settings.data_dir}")  # noqa: T201
    for key, value in report.items():
        print(f"  {key}: {value}")  # noqa: T201
    return 0


def _seed_postgres(settings: AgentSettings) -> int:
    import asyncio

    from agent_service.demo.data import DEMO_DOCS_DIR
    from agent_service.storage.postgres.backends import migrate_and_seed

    report = asyncio.run(migrate_and_seed(settings, DEMO_DOCS_DIR, force=True))
    print("migrated and seeded the demo data into PostgreSQL")  # noqa: T201
    for key, value in report.items():
        print(f"  {key}: {value}")  # noqa: T201
    return 0


def _migrate(_: argparse.Namespace) -> int:
    import asyncio

    import psycopg

    from agent_service.storage.postgres.migrate import MigrationError, migrate

    settings = _settings()
    if settings.database_url is None:
        sys.exit("agent-service migrate: set AGENT_DATABASE_URL (the SQLite defaults need none)")
    try:
        applied = asyncio.run(migrate(settings.database_url.get_secret_value()))
    except (MigrationError, psycopg.Error) as exc:
        sys.exit(f"agent-service migrate: {exc}")
    print(f"applied {len(applied)} migration(s)")  # noqa: T201
    for name in applied:
        print(f"  {name}")  # noqa: T201
    return 0


def _ingest(args: argparse.Namespace) -> int:
    from agent_service.storage.embeddings import hybrid_for
    from agent_service.storage.sqlite.documents import SqliteDocumentStore

    settings = _settings()
    path = Path(args.path)
    if not path.exists():
        sys.exit(f"agent-service ingest: {path} does not exist")
    if settings.database_url is not None:
        return _ingest_postgres(settings, args.company, path)
    hybrid = hybrid_for(settings)
    store = SqliteDocumentStore(settings.documents_dir, hybrid=hybrid)
    if hybrid is not None:
        atexit.register(hybrid.close)
    if path.is_dir():
        chunks = store.ingest_directory(args.company, path)
    else:
        text = path.read_text(encoding="utf-8")
        title = next(
            (ln.lstrip("# ").strip() for ln in text.splitlines() if ln.startswith("#")), path.stem
        )
        chunks = store.ingest(args.company, path.stem, title, text)
    print(f"ingested {chunks} chunks for {args.company}")  # noqa: T201
    return 0


def _ingest_postgres(settings: AgentSettings, company: str, path: Path) -> int:
    import asyncio
    import glob

    import psycopg

    from agent_service.storage.postgres.backends import database_dsn
    from agent_service.storage.postgres.documents import PostgresDocumentStore, read_markdown

    files = (
        read_markdown(path) if path.is_dir() else read_markdown(path.parent, glob.escape(path.name))
    )

    async def ingest() -> int:
        async with await psycopg.AsyncConnection.connect(
            database_dsn(settings), autocommit=True
        ) as conn:
            store = PostgresDocumentStore.for_connection(conn)
            return sum([await store.ingest(company, *file) for file in files])

    try:
        chunks = asyncio.run(ingest())
    except (ValueError, psycopg.Error) as exc:
        sys.exit(f"agent-service ingest: {exc}")
    print(f"ingested {chunks} chunks for {company} into PostgreSQL")  # noqa: T201
    return 0


def _mint(args: argparse.Namespace) -> int:
    settings = _settings()
    key = settings.internal_issuers.get(args.issuer)
    if key is None:
        sys.exit(
            f"agent-service mint-token: issuer {args.issuer!r} is not in AGENT_INTERNAL_ISSUERS"
        )
    if settings.env == "production":
        sys.exit("agent-service mint-token: development only (refused with AGENT_ENV=production)")
    print(  # noqa: T201
        mint_internal_token(
            issuer=args.issuer,
            key=key.get_secret_value(),
            user_id=args.user,
            company_id=args.company,
            ttl_s=args.ttl,
        )
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agent-service", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service (AGENT_* settings)")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help="serving processes sharing the port, or `auto` for one per core "
        "(above 1 needs AGENT_DATABASE_URL)",
    )
    serve.set_defaults(run=_serve)
    seed = sub.add_parser("seed", help="recreate the demo database and document stores")
    seed.set_defaults(run=_seed)
    migrate = sub.add_parser(
        "migrate", help="apply pending PostgreSQL migrations (AGENT_DATABASE_URL); idempotent"
    )
    migrate.set_defaults(run=_migrate)
    ingest = sub.add_parser("ingest", help="ingest a markdown file or directory for one company")
    ingest.add_argument("--company", required=True)
    ingest.add_argument("path")
    ingest.set_defaults(run=_ingest)
    mint = sub.add_parser("mint-token", help="print a development internal token")
    mint.add_argument("--user", required=True)
    mint.add_argument("--company", required=True)
    mint.add_argument("--issuer", default="gateway")
    mint.add_argument(
        "--ttl", type=int, default=MAX_INTERNAL_TTL_S, help=f"seconds, at most {MAX_INTERNAL_TTL_S}"
    )
    mint.set_defaults(run=_mint)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
