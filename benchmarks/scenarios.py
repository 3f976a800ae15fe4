"""The latency scenarios (S1 CPU per token, S2 paced streams) and `Bench`, which runs all four."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import aiohttp

from benchmarks.config import S1_MESSAGE, S2_MESSAGE, SHORT_MESSAGE, BenchConfig
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
from benchmarks.memory import MemoryScenarios
from benchmarks.procs import Timeline, read_samples
from benchmarks.stack import Stack
from benchmarks.stats import TIERS, ms, percentile, ratio

Driver = Callable[[aiohttp.ClientSession, str], Awaitable[StreamResult]]


async def _turn_on(
    ws: aiohttp.ClientWebSocketResponse, _: aiohttp.ClientSession, message: str
) -> StreamResult:
    """One turn on an open socket (a `Driver`)."""
    return await ws_turn(ws, message)


class Bench(MemoryScenarios):
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
            out[name]["ratio_to_floor"] = ratio(stack, floor)
            out[name]["ratio_by_tier"] = {t: ratio(per[t], floor) for t in TIERS}
        out["floor_us_per_token"] = floor
        return out

    async def _per_request(self, session: aiohttp.ClientSession) -> dict[str, Any]:
        """CPU ms per short answer (a few tokens): the fixed cost of a run, one at a time.

        `s1_request_rounds` rounds of `s1_requests` per path, the paths taking turns within a
        round; each figure is the median round (a single round drifts with the machine)."""
        cfg = self.config
        n = cfg.s1_requests
        drivers = self.drivers()
        rounds: dict[str, list[tuple[dict[str, float], float]]] = {name: [] for name in drivers}
        for _ in range(cfg.s1_request_rounds):
            for name, driver in drivers.items():
                ws: aiohttp.ClientWebSocketResponse | None = None
                if name == "ws":
                    # turns on one open socket, as a chat page asks (S4 measures sockets)
                    ws = await ws_connect(session, self.stack.gateway_url, self.token)
                    driver = partial(_turn_on, ws)
                before = read_samples(self.stack.pids)
                wall = time.perf_counter()
                try:
                    for _ in range(n):
                        result = await driver(session, SHORT_MESSAGE)
                        if result.error:
                            raise RuntimeError(f"S1 per request {name}: {result.error}")
                    wall = time.perf_counter() - wall
                    after = read_samples(self.stack.pids)
                finally:
                    if ws is not None:
                        await ws.close()
                cpu = {
                    proc: (after[proc].cpu_s - before[proc].cpu_s) / n * 1000
                    for proc in self.stack.pids
                }
                rounds[name].append((cpu, wall / n * 1000))
        out: dict[str, Any] = {"requests": n, "rounds": cfg.s1_request_rounds}
        for name, measured in rounds.items():
            out[name] = {
                "cpu_ms": {
                    proc: round(statistics.median(cpu[proc] for cpu, _ in measured), 2)
                    for proc in self.stack.pids
                },
                "wall_ms": round(statistics.median(wall for _, wall in measured), 2),
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
                row = await self.s2_level(name, n)
                if name == "floor":
                    floor_row = row
                else:
                    assert floor_row is not None
                    row["ratio_to_floor"] = {
                        key: ratio(row[key], floor_row[key])
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

    async def s2_level(self, name: str, n: int) -> dict[str, Any]:
        """One S2 level on one path: N clients, `s2_rounds` paced answers each."""
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
            "added_ttft_p50_ms": ms(percentile(ttfts, 50)),
            "added_ttft_p99_ms": ms(percentile(ttfts, 99)),
            "added_ttft_max_ms": ms(max(ttfts) if ttfts else None),
            "gap_p50_ms": ms(percentile(gaps, 50)),
            "gap_p99_ms": ms(percentile(gaps, 99)),
            "gap_max_ms": ms(max(gaps) if gaps else None),
            "errors": sum(errors.values()),
            "error_kinds": errors,
            "cpu_ms_per_stream": {
                proc: round(v["cpu_s"] / len(results) * 1000, 2)
                for proc, v in timeline.summary().items()
            },
            "processes": {**timeline.summary(), "client": {"cpu_s": round(client_cpu, 3)}},
        }
