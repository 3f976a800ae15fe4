"""`python -m benchmarks.run [--smoke] [--out DIR]`: run every scenario, write the report and JSON.

Starts the fake model server, the agent service (real-model path pointed at the fake) and the
gateway as child processes, drives them, and writes `benchmarks.md` (+ an SVG plot) and
`benchmarks.json` into `--out` (default `docs/`).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.config import BenchConfig
from benchmarks.load import dev_token
from benchmarks.report import evaluate_targets, write_report
from benchmarks.scenarios import Bench
from benchmarks.stack import raise_fd_limit, running_stack
from benchmarks.workers import s5_workers

ROOT = Path(__file__).resolve().parent.parent
ALL = frozenset({"s1", "s2", "s3", "s4", "s5"})


def _say(text: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {text}\n")
    sys.stderr.flush()


@asynccontextmanager
async def _bench(workdir: Path, config: BenchConfig) -> AsyncIterator[Bench]:
    """A fresh stack, warmed up, with a user token."""
    async with running_stack(workdir, config.fake_script()) as stack:
        async with aiohttp.ClientSession() as session:
            token = await dev_token(session, stack.gateway_url)
        bench = Bench(stack, config, token)
        _say("stack up; warming up")
        await bench.warm_up()
        yield bench


async def run(config: BenchConfig, workdir: Path, only: frozenset[str] = ALL) -> dict[str, Any]:
    """Run the scenarios (memory ones on fresh stacks); the machine-readable results."""
    fd_limit = raise_fd_limit(2 * config.s4_connections + 4096)
    started = time.time()
    load_before = os.getloadavg()
    measured: dict[str, Any] = {}
    # Memory is measured on fresh processes: after S2's peak, freed memory is reused and an
    # open stream looks cheaper than it is to a process that has not seen that load.
    if "s3" in only:
        async with _bench(workdir, config) as bench:
            _say("S3: open slow streams (fresh processes)")
            measured["s3"] = await bench.s3_open_streams()
    if "s4" in only:
        async with _bench(workdir, config) as bench:
            _say("S4: idle WebSockets (fresh processes)")
            measured["s4"] = await bench.s4_idle_websockets()
    if only & {"s1", "s2"}:
        async with _bench(workdir, config) as bench:
            if "s1" in only:
                _say("S1: CPU per token")
                measured["s1"] = await bench.s1_cpu_per_token()
            if "s2" in only:
                _say("S2: concurrent paced streams")
                measured["s2"] = await bench.s2_concurrency()
                if "s3" in only:
                    _say("S3 again, after S2's load")
                    measured["s3_after_load"] = await bench.s3_open_streams()
    if "s5" in only:
        _say(f"S5: {config.s5_workers} workers per tier (fresh processes, PostgreSQL, Redis)")
        measured["s5"] = await s5_workers(config, workdir / "s5")
    return {
        "meta": {
            "mode": config.mode,
            "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "duration_s": round(time.time() - started, 1),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "fd_limit": fd_limit,
            # other work on the machine skews latency; the ratios to the floor absorb some of it
            "loadavg_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
            "config": config.as_dict(),
        },
        **measured,
    }


def _interrupt(signum: int, frame: object) -> None:  # noqa: ARG001
    # SIGTERM unwinds like Ctrl-C, so the child processes are stopped on the way out
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Command line entry: run, then write the files."""
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(prog="benchmarks.run", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: seconds, not minutes")
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where to write")
    parser.add_argument("--workdir", type=Path, help="process logs and data (default: a temp dir)")
    parser.add_argument(
        "--only",
        default="s1,s2,s3,s4,s5",
        help="comma-separated scenarios (a partial run writes JSON only)",
    )
    parser.add_argument(
        "--s2-concurrency",
        help="comma-separated S2 stream counts instead of the mode's (e.g. 50 for a quick A/B)",
    )
    parser.add_argument(
        "--s5-concurrency", help="comma-separated S5 stream counts (2 workers per tier)"
    )
    parser.add_argument(
        "--s1-requests", type=int, help="S1's short requests instead of the mode's (finer CPU ms)"
    )
    parser.add_argument(
        "--from-json", type=Path, help="only render the report again from this results file"
    )
    args = parser.parse_args(argv)
    if args.from_json is not None:
        results = json.loads(args.from_json.read_text())
        results["targets"] = evaluate_targets(results)
        args.out.mkdir(parents=True, exist_ok=True)
        write_report(results, args.out)
        _say(f"rendered {args.out / 'benchmarks.md'} from {args.from_json}")
        return 0
    only = frozenset(args.only.split(","))
    if not only <= ALL:
        parser.error(f"--only: unknown scenarios {sorted(only - ALL)}")
    config = BenchConfig.smoke() if args.smoke else BenchConfig()
    if args.s2_concurrency:
        levels = tuple(int(n) for n in args.s2_concurrency.split(","))
        config = dataclasses.replace(config, s2_concurrency=levels)
    if args.s5_concurrency:
        levels = tuple(int(n) for n in args.s5_concurrency.split(","))
        config = dataclasses.replace(config, s5_concurrency=levels)
    if args.s1_requests:
        config = dataclasses.replace(config, s1_requests=args.s1_requests)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        results = asyncio.run(run(config, workdir, only))
    args.out.mkdir(parents=True, exist_ok=True)
    if only == ALL:
        results["targets"] = evaluate_targets(results)
        write_report(results, args.out)
    (args.out / "benchmarks.json").write_text(json.dumps(results, indent=2) + "\n")
    _say(f"wrote {args.out / 'benchmarks.md'} and benchmarks.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
