"""`python -m evals.run [--agent-url URL | --gateway-url URL] [--out DIR]`: ask the evaluation set,
score every answer against independently computed ground truth, measure retrieval recall@k, and
write `evals.md` + `evals.json` into `--out` (default `docs/`)."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from evals.agent_adapter import (
    DEV_INTERNAL_SECRET,
    pg_searcher,
    seed_demo_database,
    sqlite_searcher,
)
from evals.items import Item, load_items
from evals.markdown import render
from evals.report import Scored, summarize, table, write_json
from evals.retrieval import measure, recall_table
from evals.scoring import score
from evals.targets import Target, agent_target, gateway_target, in_process_target
from evals.truth import GroundTruth

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _say(text: str) -> None:
    sys.stderr.write(f"[eval {time.strftime('%H:%M:%S')}] {text}\n")
    sys.stderr.flush()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m evals.run", description=__doc__)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--agent-url", help="a running agent service (POST /internal/chat)")
    where.add_argument("--gateway-url", help="a running gateway in development mode")
    p.add_argument(
        "--internal-secret",
        default=os.environ.get("EVAL_INTERNAL_SECRET", DEV_INTERNAL_SECRET),
        help="HS256 key of issuer 'gateway' for --agent-url (default: the development key)",
    )
    p.add_argument("--out", type=Path, default=ROOT / "docs")
    p.add_argument("--ids", help="comma-separated item ids to ask (default: all)")
    p.add_argument("--limit", type=int, help="ask only the first N items")
    p.add_argument("--concurrency", type=int, default=4, help="conversations asked at once")
    p.add_argument("--no-pg", action="store_true", help="skip PostgreSQL retrieval recall")
    p.add_argument("--pg-admin-dsn", default=PG_ADMIN_DSN)
    return p.parse_args(argv)


def select(items: list[Item], args: argparse.Namespace) -> list[Item]:
    if args.ids:
        wanted = set(args.ids.split(","))
        unknown = wanted - {i.id for i in items}
        if unknown:
            raise SystemExit(f"unknown item ids: {', '.join(sorted(unknown))}")
        items = [i for i in items if i.id in wanted]
    return items[: args.limit] if args.limit else items


@asynccontextmanager
async def open_target(args: argparse.Namespace, workdir: Path) -> AsyncIterator[Target]:
    if args.gateway_url:
        async with gateway_target(args.gateway_url) as gw:
            yield gw
    elif args.agent_url:
        async with agent_target(
            args.agent_url, args.internal_secret, f"agent at {args.agent_url}"
        ) as a:
            yield a
    else:
        async with in_process_target(workdir / "agent") as local:
            yield local


def provider_description(args: argparse.Namespace) -> str:
    if args.gateway_url or args.agent_url:
        return "as configured on the running stack"
    if os.environ.get("AGENT_PROVIDER", "offline") == "openai":
        model = os.environ.get("AGENT_MODEL_NAME", "gpt-4o-mini")
        base = os.environ.get("AGENT_OPENAI_BASE_URL", "https://api.openai.com/v1")
        return f"openai-compatible model {model} at {base}"
    return "offline"


async def ask_all(
    target: Target, items: Sequence[Item], truth: GroundTruth, concurrency: int
) -> list[Scored]:
    run_id = secrets.token_hex(3)
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(item: Item) -> Scored:
        async with gate:
            conversation = f"eval-{run_id}-{item.id}"
            for earlier in item.before:
                await target.ask(item.company, conversation, earlier)
            reply = await target.ask(item.company, conversation, item.ask)
        expected = truth.truth_for(item)
        return Scored(item, expected, reply, score(item, expected, reply))

    return list(await asyncio.gather(*(one(i) for i in items)))


@asynccontextmanager
async def fresh_pg_database(admin_dsn: str) -> AsyncIterator[str]:
    """A new empty database on the admin DSN's server (C collation), dropped afterwards."""
    name = f"agent_eval_{secrets.token_hex(4)}"
    async with await psycopg.AsyncConnection.connect(
        admin_dsn, autocommit=True, connect_timeout=3
    ) as admin:
        await admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'").format(
                sql.Identifier(name)
            )
        )
    try:
        params = conninfo_to_dict(admin_dsn)
        params["dbname"] = name
        yield make_conninfo(**{k: str(v) for k, v in params.items() if v is not None})
    finally:
        async with await psycopg.AsyncConnection.connect(admin_dsn, autocommit=True) as admin:
            await admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


async def recall(items: Sequence[Item], workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    results = await measure(sqlite_searcher(workdir / "fts5"), items)
    out["sqlite-fts5"] = _engine(items, results)
    if args.no_pg:
        out["postgres"] = {"error": "skipped (--no-pg)"}
        return out
    try:
        async with fresh_pg_database(args.pg_admin_dsn) as dsn, pg_searcher(dsn) as search:
            out["postgres"] = _engine(items, await measure(search, items))
    except psycopg.OperationalError as exc:
        out["postgres"] = {"error": f"PostgreSQL unreachable ({str(exc).splitlines()[0]})"}
    return out


def _engine(items: Sequence[Item], results: Sequence[Any]) -> dict[str, Any]:
    by_id = {i.id: i for i in items}
    misses = [
        {
            "id": r.item_id,
            "company": r.company,
            "ask": by_id[r.item_id].ask,
            "rank": r.rank,
            "top": list(r.top),
        }
        for r in results
        if r.rank is None or r.rank > 3
    ]
    return {"table": recall_table(results), "misses": misses}


async def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    items = select(load_items(), args)
    with tempfile.TemporaryDirectory(prefix="agent-eval-") as tmp:
        workdir = Path(tmp)
        truth = GroundTruth(seed_demo_database(workdir / "truth" / "demo.sqlite"))
        try:
            _say(f"asking {len(items)} questions")
            async with open_target(args, workdir) as target:
                scored = await ask_all(target, items, truth, args.concurrency)
                description = target.description
        finally:
            truth.close()
        _say("measuring retrieval recall@k")
        recall_result = await recall(items, workdir, args)
    run = {
        "target": description,
        "provider": provider_description(args),
        "date": time.strftime("%Y-%m-%d"),
        "items": len(items),
    }
    summary = summarize(scored)
    print(table(summary))  # noqa: T201
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "evals.md").write_text(
        render(run, summary, scored, recall_result), encoding="utf-8"
    )
    write_json(args.out / "evals.json", run, summary, scored, recall_result)
    _say(f"wrote {args.out / 'evals.md'} and evals.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
