"""`python -m benchmarks.profile`: flame graphs of short requests through the whole stack.

Starts the same stack as the benchmark, warms it up, then records the agent and the gateway with
py-spy (`--py-spy PATH`, a separate install: it is not a project dependency) while one client
sends `--requests` short answers over SSE one after another. Writes one SVG per tier into `--out`
(`profile-agent.svg`, `profile-gateway.svg`). Needs ptrace rights over the children (root or
`kernel.yama.ptrace_scope=0`).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
from pathlib import Path

import aiohttp

from benchmarks.config import SHORT_MESSAGE, BenchConfig
from benchmarks.load import connector, dev_token, sse_stream
from benchmarks.stack import running_stack

ROOT = Path(__file__).resolve().parent.parent


async def profile(
    py_spy: str, out: Path, requests: int, rate: int, fmt: str, workdir: Path
) -> None:
    """Record both tiers while `requests` short answers stream one after another."""
    async with (
        running_stack(workdir, BenchConfig().fake_script()) as stack,
        aiohttp.ClientSession(connector=connector()) as session,
    ):
        token = await dev_token(session, stack.gateway_url)
        for _ in range(20):  # warm-up: imports, first connections, first checkpoint
            await sse_stream(session, stack.gateway_url, token, SHORT_MESSAGE)
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
                str(out / f"profile-{tier}.{'svg' if fmt == 'flamegraph' else 'txt'}"),
                "--nonblocking",
                "--gil",  # only the thread holding the GIL: Python's CPU, not idle waits
                stdout=asyncio.subprocess.DEVNULL,
            )
            for tier in ("agent", "gateway")
        }
        await asyncio.sleep(1.0)  # py-spy attaches
        for _ in range(requests):
            result = await sse_stream(session, stack.gateway_url, token, SHORT_MESSAGE)
            if result.error:
                raise RuntimeError(f"short request failed: {result.error}")
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
    parser.add_argument("--format", default="flamegraph", help="flamegraph (SVG) or raw (text)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="profile-") as tmp:
        asyncio.run(
            profile(args.py_spy, args.out, args.requests, args.rate, args.format, Path(tmp))
        )
    sys.stderr.write(f"wrote {args.out}/profile-agent.svg and profile-gateway.svg\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
