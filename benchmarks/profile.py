"""`python -m benchmarks.profile`: flame graphs of short requests through the whole stack.

Starts the same stack as the benchmark, warms it up, then records the agent and the gateway with
py-spy (`--py-spy PATH`, a separate install: it is not a project dependency) while one client
sends `--requests` short answers over SSE one after another, or (`--paced N`) while N clients
each read `--requests` paced S2 answers (the per-token path). Writes one SVG per tier into `--out`
(`profile-agent.svg`, `profile-gateway.svg`; `profile-paced-*.svg` with `--paced`). Needs ptrace
rights over the children (root or `kernel.yama.ptrace_scope=0`).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
from pathlib import Path

import aiohttp

from benchmarks.config import S2_MESSAGE, SHORT_MESSAGE, BenchConfig
from benchmarks.load import connector, dev_token, sse_stream
from benchmarks.stack import running_stack

ROOT = Path(__file__).resolve().parent.parent


async def profile(
    py_spy: str, out: Path, requests: int, rate: int, fmt: str, workdir: Path, paced: int = 0
) -> None:
    """Record both tiers while `requests` short answers stream one after another (or `paced`
    clients each read `requests` paced answers)."""
    async with (
        running_stack(workdir, BenchConfig().fake_script()) as stack,
        aiohttp.ClientSession(connector=connector()) as session,
    ):
        token = await dev_token(session, stack.gateway_url)
        for _ in range(20):  # warm-up: imports, first connections, first checkpoint
            await sse_stream(session, stack.gateway_url, token, SHORT_MESSAGE)
        name = "profile-paced" if paced else "profile"
        recorders = {
            tier: await asyncio.create_subprocess_exec(
                py_spy,
                "record",
                "--pid",
                str(stack.pids[tier]),
                "--rate",
                str(rate),
                "--format",
                fmt,
                "--output",
                str(out / f"{name}-{tier}.{'svg' if fmt == 'flamegraph' else 'txt'}"),
                "--nonblocking",
                "--gil",  # only the thread holding the GIL: Python's CPU, not idle waits
                stdout=asyncio.subprocess.DEVNULL,
            )
            for tier in ("agent", "gateway")
        }
        await asyncio.sleep(1.0)  # py-spy attaches

        async def client(message: str) -> None:
            for _ in range(requests):
                result = await sse_stream(session, stack.gateway_url, token, message)
                if result.error:
                    raise RuntimeError(f"request failed: {result.error}")

        if paced:
            await asyncio.gather(*(client(S2_MESSAGE) for _ in range(paced)))
        else:
            await client(SHORT_MESSAGE)
        for proc in recorders.values():
            proc.send_signal(signal.SIGINT)
        for proc in recorders.values():
            await asyncio.wait_for(proc.wait(), 60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.profile", description=__doc__)
    parser.add_argument("--py-spy", default="py-spy", help="the py-spy executable")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument(
        "--paced", type=int, default=0, help="N clients reading paced answers (per-token path)"
    )
    parser.add_argument("--format", default="flamegraph", help="flamegraph (SVG) or raw (text)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="profile-") as tmp:
        asyncio.run(
            profile(
                args.py_spy, args.out, args.requests, args.rate, args.format, Path(tmp), args.paced
            )
        )
    name = "profile-paced" if args.paced else "profile"
    sys.stderr.write(f"wrote {args.out}/{name}-agent and {name}-gateway\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
