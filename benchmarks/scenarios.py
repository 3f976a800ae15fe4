"""The scenarios: CPU per token (S1), paced streams (S2), open streams (S3), idle sockets (S4)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp

from benchmarks.config import S1_MESSAGE, S2_MESSAGE, S3_MESSAGE, SHORT_MESSAGE, BenchConfig
from benchmarks.load import (
    StreamResult,
    connector,
    fake_stream,
    sse_stream,
    staggered,
    ws_connect,
    ws_stream,
    ws_turn,
)
from benchmarks.procs import Timeline, read_sample, read_samples
from benchmarks.stack import Stack

TIERS = ("agent", "gateway")
Driver = Callable[[aiohttp.ClientSession, str], Awaitable[StreamResult]]


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


def _ratio(value: float | None, floor: float | None) -> float | None:
    if value is None or floor is None or floor <= 0:
        return None
    return round(value / floor, 2)


class Bench:
    """Runs the scenarios against one running stack, from one client session."""

    def __init__(self, stack: Stack, config: BenchConfig, token: str) -> None:
        self.stack = stack
        self.config = config
        self.token = token

    def drivers(self) -> dict[str, Driver]:
        """Each way of reading one answer: the raw floor, and the gateway's two transports."""
        s = self.stack
        return {
            "floor": lambda session, msg: fake_stream(session, s.fake_url, msg),
            "sse": lambda session, msg: sse_stream(session, s.gateway_url, self.token, msg),
            "ws": lambda session, msg: ws_stream(session, s.gateway_url, self.token, msg),
        }

    async def warm_up(self) -> None:
        """One short answer per path, so imports and caches are paid before measuring."""
        async with aiohttp.ClientSession(connector=connector()) as session:
            for driver in self.drivers().values():
                for message in (S1_MESSAGE,):
                    result = await driver(session, message)
                    if result.error:
                        raise RuntimeError(f"warm-up failed: {result.error}")

    # S1 -------------------------------------------------------------------------------------

    async def s1_cpu_per_token(self) -> dict[str, Any]:
        """One unpaced stream of `s1_tokens`: CPU µs per token of every process, per path."""
        cfg = self.config
        pids = self.stack.pids
        out: dict[str, Any] = {"tokens": cfg.s1_tokens, "reps": cfg.s1_reps}
        async with aiohttp.ClientSession(connector=connector()) as session:
            for name, driver in self.drivers().items():
                tokens = 0
                before = read_samples(pids)
                client_before = time.process_time()
                wall = time.perf_counter()
                for _ in range(cfg.s1_reps):
                    result = await driver(session, S1_MESSAGE)
                    if result.error:
                        raise RuntimeError(f"S1 {name}: {result.error}")
                    tokens += result.tokens
                wall = time.perf_counter() - wall
                client_cpu = time.process_time() - client_before
                after = read_samples(pids)
                per = {
                    proc: round((after[proc].cpu_s - before[proc].cpu_s) / tokens * 1e6, 2)
                    for proc in pids
                }
                per["client"] = round(client_cpu / tokens * 1e6, 2)
                out[name] = {
                    "us_per_token": per,
                    "tokens_per_s": round(tokens / wall, 1),
                }
            out["per_request"] = await self._per_request(session)
        floor = out["floor"]["us_per_token"]["client"]
        for name in ("sse", "ws"):
            per = out[name]["us_per_token"]
            stack = per["agent"] + per["gateway"]
            out[name]["stack_us_per_token"] = round(stack, 2)
            out[name]["ratio_to_floor"] = _ratio(stack, floor)
            out[name]["ratio_by_tier"] = {t: _ratio(per[t], floor) for t in TIERS}
        out["floor_us_per_token"] = floor
        return out

    async def _per_request(self, session: aiohttp.ClientSession) -> dict[str, Any]:
        """CPU ms per short answer (a few tokens): the fixed cost of a run, one at a time."""
        n = self.config.s1_requests
        out: dict[str, Any] = {"requests": n}
        for name, driver in self.drivers().items():
            before = read_samples(self.stack.pids)
            wall = time.perf_counter()
            for _ in range(n):
                result = await driver(session, SHORT_MESSAGE)
                if result.error:
                    raise RuntimeError(f"S1 per request {name}: {result.error}")
            wall = time.perf_counter() - wall
            after = read_samples(self.stack.pids)
            out[name] = {
                "cpu_ms": {
                    proc: round((after[proc].cpu_s - before[proc].cpu_s) / n * 1000, 2)
                    for proc in self.stack.pids
                },
                "wall_ms": round(wall / n * 1000, 2),
            }
        return out

    # S2 -------------------------------------------------------------------------------------

    async def s2_concurrency(self) -> list[dict[str, Any]]:
        """N paced streams at once per path: added TTFT, inter-token gaps, errors, CPU use."""
        cfg = self.config
        rows: list[dict[str, Any]] = []
        for n in cfg.s2_concurrency:
            floor_row: dict[str, Any] | None = None
            for name in ("floor", *cfg.s2_transports):
                row = await self._s2_once(name, n)
                if name == "floor":
                    floor_row = row
                else:
                    assert floor_row is not None
                    row["ratio_to_floor"] = {
                        key: _ratio(row[key], floor_row[key])
                        for key in ("added_ttft_p50_ms", "added_ttft_p99_ms", "gap_p99_ms")
                    }
                rows.append(row)
                await asyncio.sleep(self.config.settle_s)
        return rows

    async def _s2_client(self, name: str, session: aiohttp.ClientSession) -> list[StreamResult]:
        """One client asking `s2_rounds` times in a row (on one socket for WebSocket)."""
        cfg = self.config
        results: list[StreamResult] = []

        async def bounded(turn: Awaitable[StreamResult]) -> StreamResult:
            try:
                async with asyncio.timeout(cfg.s2_timeout_s):
                    return await turn
            except TimeoutError:
                return StreamResult(started=time.perf_counter(), error="timeout")

        if name == "ws":
            try:
                ws = await ws_connect(session, self.stack.gateway_url, self.token)
            except (aiohttp.ClientError, OSError, TimeoutError, RuntimeError) as exc:
                return [StreamResult(error=f"connect {type(exc).__name__}")] * cfg.s2_rounds
            try:
                for _ in range(cfg.s2_rounds):
                    results.append(await bounded(ws_turn(ws, S2_MESSAGE)))
            finally:
                await ws.close()
            return results
        driver = self.drivers()[name]
        for _ in range(cfg.s2_rounds):
            results.append(await bounded(driver(session, S2_MESSAGE)))
        return results

    async def _s2_once(self, name: str, n: int) -> dict[str, Any]:
        cfg = self.config
        timeline = Timeline(dict(self.stack.pids))
        sampler = asyncio.create_task(timeline.run())
        client_cpu = time.process_time()
        try:
            async with aiohttp.ClientSession(connector=connector()) as session:
                # starts spread over one answer's length, then each client asks again at once:
                # from then on N streams are in flight, arriving at N per answer-length
                per_client: list[list[StreamResult]] = await staggered(
                    [lambda: self._s2_client(name, session) for _ in range(n)], cfg.s2_stream_s
                )
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
            timeline.close()
        results = [r for client in per_client for r in client]
        client_cpu = time.process_time() - client_cpu
        nominal = cfg.s2_ttft_ms / 1000
        ttfts = [r.ttft_s - nominal for r in results if r.ttft_s is not None]
        gaps = [g for r in results for g in r.gaps]
        errors: dict[str, int] = {}
        for r in results:
            reason = r.error or (None if r.tokens == cfg.s2_tokens else f"tokens {r.tokens}")
            if reason:
                errors[reason] = errors.get(reason, 0) + 1
        return {
            "path": name,
            "n": n,
            "streams": len(results),
            "added_ttft_p50_ms": _ms(percentile(ttfts, 50)),
            "added_ttft_p99_ms": _ms(percentile(ttfts, 99)),
            "added_ttft_max_ms": _ms(max(ttfts) if ttfts else None),
            "gap_p50_ms": _ms(percentile(gaps, 50)),
            "gap_p99_ms": _ms(percentile(gaps, 99)),
            "gap_max_ms": _ms(max(gaps) if gaps else None),
            "errors": sum(errors.values()),
            "error_kinds": errors,
            "cpu_ms_per_stream": {
                proc: round(v["cpu_s"] / len(results) * 1000, 2)
                for proc, v in timeline.summary().items()
            },
            "processes": {**timeline.summary(), "client": {"cpu_s": round(client_cpu, 3)}},
        }

    # S3 -------------------------------------------------------------------------------------

    async def s3_open_streams(self) -> dict[str, Any]:
        """RSS growth per open slow stream, per tier, and the raw floor's (a separate client)."""
        cfg = self.config
        n = cfg.s3_streams
        pids = self.stack.pids
        fake_disconnects = await self._fake_disconnects()
        abandoned_before = self._log_count("agent", "run_ignored_cancellation")
        async with aiohttp.ClientSession(connector=connector()) as session:
            # a first, smaller round pays each tier's one-time allocations
            await self._hold_streams(session, max(2, n // 10), measure=None)
            before = read_samples(pids)
            after: dict[str, Any] = {}
            opened = await self._hold_streams(session, n, measure=after)
        growth = {proc: round((after[proc].rss - before[proc].rss) / n / 1024, 2) for proc in pids}
        await asyncio.sleep(cfg.settle_s)
        gone = await self._fake_disconnects() - fake_disconnects
        abandoned = self._log_count("agent", "run_ignored_cancellation") - abandoned_before
        floor = await self._floor_rss(n)
        stack = growth["agent"] + growth["gateway"]
        return {
            "streams": n,
            "opened": opened,
            "kib_per_stream": growth,
            "stack_kib_per_stream": round(stack, 2),
            "floor_kib_per_stream": floor,
            "ratio_to_floor": _ratio(stack, floor),
            "ratio_by_tier": {t: _ratio(growth[t], floor) for t in TIERS},
            "model_calls_cancelled": gone,
            # runs the agent gave up waiting for after the hang-up (its CANCEL_GRACE_S)
            "runs_not_unwound_in_grace": abandoned,
        }

    def _log_count(self, proc: str, event: str) -> int:
        """Lines of a child's log naming `event` (its JSON logs; warnings and errors only)."""
        path = self.stack.logs[proc]
        if not path.exists():
            return 0
        needle = f'"{event}"'
        with path.open(encoding="utf-8", errors="replace") as log:
            return sum(needle in line for line in log)

    async def _hold_streams(
        self, session: aiohttp.ClientSession, n: int, measure: dict[str, Any] | None
    ) -> int:
        """Open `n` slow SSE streams, wait until each has a token, sample, then hang up on all."""
        opened = 0
        all_open = asyncio.Event()

        def first(_: StreamResult) -> None:
            nonlocal opened
            opened += 1
            if opened == n:
                all_open.set()

        tasks = [
            asyncio.create_task(
                sse_stream(session, self.stack.gateway_url, self.token, S3_MESSAGE, first)
            )
            for _ in range(n)
        ]
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(30.0, n / 10)):
                    await all_open.wait()
            await asyncio.sleep(self.config.settle_s)
            if measure is not None:
                measure.update(read_samples(self.stack.pids))
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return opened

    async def _floor_rss(self, n: int) -> float | None:
        """KiB per open stream of a fresh client process reading the fake directly."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.floor",
            "streams",
            "--url",
            self.stack.fake_url,
            "--n",
            str(n),
            "--settle",
            str(self.config.settle_s),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            return None
        value: float = json.loads(out)["kib_per_stream"]
        return value

    async def _fake_disconnects(self) -> int:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.stack.fake_url}/_fake/disconnects") as resp,
        ):
            body = await resp.json()
            total: int = body["total"]
            return total

    # S4 -------------------------------------------------------------------------------------

    async def s4_idle_websockets(self) -> dict[str, Any]:
        """RSS growth of the gateway per idle authenticated WebSocket, and a bare server's."""
        cfg = self.config
        n = cfg.s4_connections
        gateway_pid = self.stack.pids["gateway"]
        async with aiohttp.ClientSession(connector=connector()) as session:
            # pay one-time costs first
            await self._hold_sockets(session, self.stack.gateway_url, max(2, n // 20), None, 0)
            before = read_sample(gateway_pid)
            held: dict[str, Any] = {}
            opened = await self._hold_sockets(session, self.stack.gateway_url, n, held, gateway_pid)
        growth = round((held["rss"] - before.rss) / n / 1024, 2) if opened else None
        floor = await self._floor_ws(n)
        return {
            "connections": n,
            "opened": opened,
            "gateway_kib_per_connection": growth,
            "failures": held.get("failures", {}),
            "floor_kib_per_connection": floor,
            "ratio_to_floor": _ratio(growth, floor),
        }

    async def _hold_sockets(
        self,
        session: aiohttp.ClientSession,
        url: str,
        n: int,
        measure: dict[str, Any] | None,
        pid: int,
        *,
        auth: bool = True,
    ) -> int:
        gate = asyncio.Semaphore(100)
        sockets: list[aiohttp.ClientWebSocketResponse] = []

        async def one() -> None:
            async with gate:
                if auth:
                    sockets.append(await ws_connect(session, url, self.token))
                else:
                    sockets.append(await session.ws_connect(url + "/ws", heartbeat=None))

        results = await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        try:
            await asyncio.sleep(self.config.settle_s)
            if measure is not None:
                measure["rss"] = read_sample(pid).rss
                kinds: dict[str, int] = {}
                for failure in failures:
                    kind = f"{type(failure).__name__}: {failure}"[:120]
                    kinds[kind] = kinds.get(kind, 0) + 1
                measure["failures"] = kinds
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        return len(sockets)

    async def _floor_ws(self, n: int) -> float | None:
        """KiB per idle connection of a bare aiohttp WebSocket server (its own process)."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.floor",
            "ws-server",
            stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            url = json.loads(line)["url"]
            async with aiohttp.ClientSession(connector=connector()) as session:
                await self._hold_sockets(session, url, max(2, n // 20), None, 0, auth=False)
                before = read_sample(proc.pid)
                held: dict[str, Any] = {}
                opened = await self._hold_sockets(session, url, n, held, proc.pid, auth=False)
            return round((held["rss"] - before.rss) / n / 1024, 2) if opened else None
        finally:
            proc.terminate()
            await proc.wait()
