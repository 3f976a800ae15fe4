"""S5: the largest N that `--workers 2` per tier holds within the S2 targets, per core.

Each tier runs as `s5_workers` serving processes: the agent on PostgreSQL (workers share
conversations and leases there), the gateway on Redis (shared limits and stream leases), as in
the compose stack. The S2 load (SSE) runs at each of `s5_concurrency`; a level is held when no
stream failed and added TTFT p99 and gap p99 are within the S2 targets. Streams per core is the
largest level held over the machine's cores (which also run the fake model and the client).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
from psycopg import sql

from benchmarks.config import BenchConfig
from benchmarks.load import dev_token
from benchmarks.scenarios import Bench
from benchmarks.stack import running_stack

PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
TTFT_P99_MS = 150.0
GAP_P99_MS = 80.0


@contextmanager
def bench_database() -> Iterator[str]:
    """A fresh PostgreSQL database for the agent's workers (dropped afterwards); its URL."""
    name = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'").format(
                sql.Identifier(name)
            )
        )
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def held(row: dict[str, Any]) -> bool:
    """Whether one level met the S2 targets."""
    ttft, gap = row["added_ttft_p99_ms"], row["gap_p99_ms"]
    return (
        row["errors"] == 0
        and ttft is not None
        and ttft <= TTFT_P99_MS
        and gap is not None
        and gap <= GAP_P99_MS
    )


async def s5_workers(config: BenchConfig, workdir: Path) -> dict[str, Any]:
    """Run the S2 load over SSE at each level against `s5_workers` processes per tier."""
    rows: list[dict[str, Any]] = []
    with bench_database() as database_url:
        async with running_stack(
            workdir,
            config.fake_script(),
            workers=config.s5_workers,
            agent_extra={"AGENT_DATABASE_URL": database_url},
            gateway_extra={
                "GATEWAY_REDIS_URL": REDIS_URL,
                "GATEWAY_REDIS_PREFIX": f"bench{secrets.token_hex(3)}",
            },
        ) as stack:
            async with aiohttp.ClientSession() as session:
                token = await dev_token(session, stack.gateway_url)
            bench = Bench(stack, config, token)
            await bench.warm_up()
            for n in config.s5_concurrency:
                rows.append(await bench.s2_level("sse", n))
    cpus = os.cpu_count() or 1
    top = max((row["n"] for row in rows if held(row)), default=0)
    return {
        "workers": config.s5_workers,
        "cpus": cpus,
        "rows": rows,
        "held": top,
        "streams_per_core": round(top / cpus, 1),
    }


def s5_lines(results: dict[str, Any]) -> list[str]:
    """The report's S5 section (nothing when the run had no S5)."""
    s5 = results.get("s5")
    if not s5:
        return []
    lines = [
        "",
        f"## S5: {s5['workers']} workers per tier (SSE, the S2 load)",
        "",
        f"`agent-service serve --workers {s5['workers']}` on PostgreSQL and `gateway serve "
        f"--workers {s5['workers']}` on Redis, as in the compose stack. A level is held when no "
        f"stream failed, added TTFT p99 ≤ {TTFT_P99_MS:g} ms and gap p99 ≤ {GAP_P99_MS:g} ms. "
        f"**Held: {s5['held']} streams, {s5['streams_per_core']:g} per core** ({s5['cpus']} "
        "cores, shared with the fake model and the client).",
        "",
        "| N | added TTFT p50 / p99 ms | gap p50 / p99 / max ms | errors | cores agent / gateway "
        "| CPU ms per stream agent / gateway | held |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in s5["rows"]:
        procs, per = r["processes"], r.get("cpu_ms_per_stream") or {}
        cores = " / ".join(
            str(procs.get(p, {}).get("cpu_cores", "–")) for p in ("agent", "gateway")
        )
        cost = " / ".join(str(per.get(p, "–")) for p in ("agent", "gateway"))
        errors = str(r["errors"]) + (f" ({r['error_kinds']})" if r["errors"] else "")
        lines.append(
            f"| {r['n']} | {r['added_ttft_p50_ms']} / {r['added_ttft_p99_ms']} | "
            f"{r['gap_p50_ms']} / {r['gap_p99_ms']} / {r['gap_max_ms']} | {errors} | {cores} | "
            f"{cost} | {'yes' if held(r) else 'no'} |"
        )
    return lines
