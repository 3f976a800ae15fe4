"""Faults of PostgreSQL under a running replica: a crash mid-answer, an outage and its end.

The database is reached through a TCP proxy the test stops (every connection cut, new ones
refused: a crash as clients see it) and restarts; the machine's server is never stopped.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from support.pg_database import PG_HOST, PG_PORT, fresh_database
from support.servers import serve_asgi
from support.sse_client import stream_chat
from support.tcp_proxy import TcpProxy

from agent_service.app import create_app
from agent_service.settings import AgentSettings
from contracts.sse import SSEDecoder

Mint = Callable[..., str]


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with fresh_database("agent_pgfault") as name:
        yield name


@asynccontextmanager
async def _agent_behind_proxy(database: str, tmp_path: Path) -> AsyncIterator[tuple[str, TcpProxy]]:
    proxy = TcpProxy(PG_HOST, PG_PORT)
    await proxy.start()
    settings = AgentSettings(
        env="test",
        data_dir=tmp_path / "unused",
        database_url=f"postgresql://postgres@127.0.0.1:{proxy.port}/{database}",
        offline_pace_ms=30,
    )
    try:
        async with serve_asgi(create_app(settings)) as url:
            yield url, proxy
    finally:
        await proxy.stop()


async def _get(url: str, path: str, token: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as s, s.get(url + path, headers=headers) as r:
        return r.status, await r.json()


async def _until(check: Callable[[], Any], within: float) -> float:
    """Seconds until `check()` is true, polling every 50 ms; fails after `within`."""
    started = time.perf_counter()
    while not await check():
        assert time.perf_counter() - started < within, "not recovered in time"
        await asyncio.sleep(0.05)
    return time.perf_counter() - started


async def test_a_database_crash_mid_answer_is_retryable_at_once_and_keeps_the_question(
    database: str, tmp_path: Path, mint: Mint
) -> None:
    async with _agent_behind_proxy(database, tmp_path) as (url, proxy):
        body = {
            "input": {"message": "hello there"},
            "conversation": {"id": "crash", "user_id": "u-alice", "company_id": "acme-hvac"},
        }
        events: list[dict[str, Any]] = []
        decoder = SSEDecoder()
        crashed_at: float | None = None
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{url}/internal/chat/stream",
                json=body,
                headers={"Authorization": f"Bearer {mint()}"},
            ) as resp,
        ):
            assert resp.status == 200
            async for chunk in resp.content.iter_any():
                events.extend(json.loads(msg.data) for msg in decoder.feed(chunk))
                if crashed_at is None and any(e["event"] == "token" for e in events):
                    await proxy.stop()  # PostgreSQL crashes while the answer streams
                    crashed_at = time.perf_counter()
            ended_at = time.perf_counter()
        assert crashed_at is not None
        terminal = events[-1]
        assert terminal["event"] == "error", terminal
        assert terminal["code"] == "UPSTREAM_UNAVAILABLE"
        assert terminal["retryable"] is True
        assert [e for e in events if e["event"] in ("complete", "error")] == [terminal]
        # at once: not after a pool timeout or two (10 s before)
        assert ended_at - crashed_at < 3.0

        await proxy.start()  # the database is back
        await _until(lambda: _ready(url), within=5)
        status, history = await _get(url, "/internal/conversations/crash", mint())
        assert status == 200
        assert [m["content"] for m in history["messages"] if m["role"] == "user"] == ["hello there"]


async def _ready(url: str) -> bool:
    return (await _get(url, "/ready"))[0] == 200


async def test_an_outage_fails_fast_says_not_ready_and_recovers_within_seconds(
    database: str, tmp_path: Path, mint: Mint
) -> None:
    async with _agent_behind_proxy(database, tmp_path) as (url, proxy):
        first = await stream_chat(url, mint(), "hello there", conversation="outage")
        assert first.terminal["event"] == "complete"

        await proxy.stop()
        # readiness follows the database
        assert await _until(lambda: _not_ready(url), within=3) < 3
        # a request during the outage is a quick, retryable 503, not a 5 s wait each
        started = time.perf_counter()
        during = await stream_chat(url, mint(), "hello there", conversation="outage")
        refused_in = time.perf_counter() - started
        assert refused_in < 2.0
        assert during.status == 503
        assert during.events[0]["error"]["code"] == "UPSTREAM_UNAVAILABLE"
        status, _ = await _get(url, "/internal/conversations", mint())
        assert status == 503
        # long enough for the pools' reconnection backoff to have grown (1 s, 2 s, 4 s…)
        await asyncio.sleep(6)

        await proxy.start()
        recovered = await _until(lambda: _chat_ok(url, mint()), within=5)
        assert recovered < 4.0
        assert await _ready(url)


async def _not_ready(url: str) -> bool:
    status, body = await _get(url, "/ready")
    return status == 503 and body["status"] == "not_ready"


async def _chat_ok(url: str, token: str) -> bool:
    result = await stream_chat(url, token, "hello there", conversation="after")
    return result.status == 200 and result.terminal["event"] == "complete"
