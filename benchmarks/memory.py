"""The memory scenarios: RSS per open slow stream (S3) and per idle WebSocket (S4)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from typing import Any

import aiohttp

from benchmarks.config import S3_MESSAGE, BenchConfig
from benchmarks.load import StreamResult, connector, sse_stream, ws_connect
from benchmarks.procs import read_sample, read_samples
from benchmarks.stack import Stack
from benchmarks.stats import TIERS, ratio


class MemoryScenarios:
    """S3 and S4, run by `scenarios.Bench` against its stack."""

    stack: Stack
    config: BenchConfig
    token: str

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
            "ratio_to_floor": ratio(stack, floor),
            "ratio_by_tier": {t: ratio(growth[t], floor) for t in TIERS},
            "model_calls_cancelled": gone,
            # runs the agent gave up waiting for after the hang-up (`run_ignored_cancellation`)
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
            "ratio_to_floor": ratio(growth, floor),
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
