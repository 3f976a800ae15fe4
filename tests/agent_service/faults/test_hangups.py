"""Faults: clients that hang up at random points of a run never wedge the store.

Hundreds of stops under concurrency, on both routes and both backends; afterwards a new chat,
a delete and `/ready` must all still work, within seconds, and the conversation list must agree
with the histories it points to.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from langgraph.checkpoint.base import empty_checkpoint
from support.pg_database import dsn_for, fresh_database
from support.servers import serve_asgi
from support.sse_client import stream_chat

from agent_service.app import create_app
from agent_service.providers.base import TenantContext
from agent_service.settings import AgentSettings
from agent_service.storage.sqlite.conversations import SqliteConversationStore
from agent_service.storage.sqlite.memory import open_memory

Mint = Callable[..., str]
HANGUPS = 200
CONCURRENCY = 40
QUESTIONS = [
    "How many technicians are active?",
    "What is the on-call policy?",
    "List all technicians",
    "hello there",
]


def _body(message: str, conversation: str) -> dict[str, Any]:
    return {
        "input": {"message": message},
        "conversation": {"id": conversation, "user_id": "u-alice", "company_id": "acme-hvac"},
    }


async def _hang_up(
    session: aiohttp.ClientSession, url: str, token: str, rng: random.Random
) -> None:
    """One client that goes away at a random point: before the reply, mid-stream, or at its end."""
    body = _body(rng.choice(QUESTIONS), f"conv-{rng.randrange(30)}")
    if rng.random() < 0.6:
        frames = rng.randrange(0, 40)  # many answers end within 40 frames: some stop at the end
        try:
            async with session.post(
                f"{url}/internal/chat/stream",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
            ) as resp:
                for _ in range(frames):
                    if not await resp.content.readany():
                        break
        except aiohttp.ClientError:
            pass
        return
    try:
        async with asyncio.timeout(rng.uniform(0, 0.3)):
            async with session.post(
                f"{url}/internal/chat", json=body, headers={"Authorization": f"Bearer {token}"}
            ) as resp:
                await resp.read()
    except (TimeoutError, aiohttp.ClientError):
        pass


async def _call(url: str, method: str, path: str, token: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, url + path, headers=headers) as r,
    ):
        return r.status, (await r.json() if r.status != 204 else None)


async def _storm_then_check(url: str, mint: Mint, seed: int) -> None:
    rng = random.Random(seed)
    gate = asyncio.Semaphore(CONCURRENCY)
    token = mint()

    async def one(session: aiohttp.ClientSession) -> None:
        async with gate:
            await _hang_up(session, url, token, rng)

    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(one(session) for _ in range(HANGUPS)))
    # the store still writes, at once: a new chat, a delete, and /ready says so
    async with asyncio.timeout(10):
        assert (await _call(url, "GET", "/ready"))[0] == 200
        fresh = await stream_chat(url, mint(), "How many technicians are active?", conversation="n")
        assert fresh.status == 200 and fresh.terminal["event"] == "complete"
        assert (await _call(url, "DELETE", "/internal/conversations/n", mint()))[0] == 204
        assert (await _call(url, "DELETE", "/internal/conversations/conv-1", mint()))[0] in (
            204,
            404,
        )
    assert time.perf_counter() - started < 30
    # every listed count agrees with the history it points to (the questions were kept)
    status, listing = await _call(url, "GET", "/internal/conversations", mint())
    assert status == 200
    for conv in listing["conversations"]:
        status, history = await _call(url, "GET", f"/internal/conversations/{conv['id']}", mint())
        assert status == 200
        asked = [m for m in history["messages"] if m["role"] == "user"]
        assert len(asked) == conv["message_count"], conv["id"]


async def test_hangups_at_random_points_never_wedge_sqlite(
    make_settings: Callable[..., AgentSettings], mint: Mint
) -> None:
    async with serve_asgi(create_app(make_settings(offline_pace_ms=1))) as url:
        await _storm_then_check(url, mint, seed=11)


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with fresh_database("agent_fault") as name:
        yield name


async def test_hangups_at_random_points_never_wedge_postgres(
    database: str, tmp_path: Path, mint: Mint
) -> None:
    settings = AgentSettings(
        env="test",
        data_dir=tmp_path / "unused",
        database_url=dsn_for(database),
        offline_pace_ms=1,
        pg_pool_max=20,
    )
    async with serve_asgi(create_app(settings)) as url:
        await _storm_then_check(url, mint, seed=12)


@asynccontextmanager
async def _memory(tmp_path: Path) -> AsyncIterator[tuple[Any, SqliteConversationStore]]:
    async with open_memory(tmp_path / "memory.sqlite", busy_timeout_s=1.0) as saver:
        yield saver, await SqliteConversationStore.sharing(saver)


async def test_a_write_cancelled_at_any_point_leaves_the_store_writable(tmp_path: Path) -> None:
    """The precise version of the storm: every store write, cancelled after 0..9 loop turns."""
    tenant = TenantContext(company_id="c", user_id="u", conversation_id="x")
    async with _memory(tmp_path) as (saver, store):
        writes: dict[str, Callable[[], Any]] = {
            "record_message": lambda: store.record_message(tenant, "hi"),
            "delete": lambda: store.delete("c", "u", "x"),
            "checkpoint": lambda: saver.aput(
                {"configurable": {"thread_id": "c/u/x", "checkpoint_ns": ""}},
                empty_checkpoint(),
                {},
                {},
            ),
            "delete_thread": lambda: saver.adelete_thread("c/u/x"),
        }
        for name, write in writes.items():
            for turns in range(10):
                task = asyncio.ensure_future(write())
                for _ in range(turns):
                    await asyncio.sleep(0)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                # then a write through the other path, and a read, and a write again: the
                # sequence that used to pin a stale snapshot for good
                async with asyncio.timeout(3):
                    await store.record_message(tenant, "again")
                    await saver.adelete_thread("c/u/other")
                    assert await store.get("c", "u", "x") is not None
                    await store.record_message(tenant, "and again")
                    assert await store.writable(1.0), (name, turns)


async def test_the_message_right_after_a_stop_is_answered_not_refused(
    make_settings: Callable[..., AgentSettings], mint: Mint
) -> None:
    """Stop mid-answer, send the next message at once: 10 of 10 answered (no 409)."""
    async with (
        serve_asgi(create_app(make_settings(offline_pace_ms=5))) as url,
        aiohttp.ClientSession() as session,
    ):
        for n in range(10):
            async with session.post(
                f"{url}/internal/chat/stream",
                json=_body("List all technicians", "conv-stop"),
                headers={"Authorization": f"Bearer {mint()}"},
            ) as resp:
                seen = b""
                while b"event: token" not in seen:
                    seen += await resp.content.readany()
                resp.close()  # stop
            again = await stream_chat(url, mint(), f"question {n}", conversation="conv-stop")
            assert again.status == 200, (n, again.status)
            assert again.terminal["event"] == "complete"
        status, history = await _call(url, "GET", "/internal/conversations/conv-stop", mint())
        assert status == 200
        assert [m["content"] for m in history["messages"] if m["role"] == "user"].count(
            "List all technicians"
        ) == 10


async def test_ready_is_503_while_the_store_cannot_write(
    make_settings: Callable[..., AgentSettings], mint: Mint, data_dir: Path
) -> None:
    settings = make_settings(ready_timeout_s=0.3, sqlite_busy_timeout_s=0.5)
    async with serve_asgi(create_app(settings)) as url:
        assert (await _call(url, "GET", "/ready"))[0] == 200
        # another process takes the memory database's write lock and keeps it
        other = sqlite3.connect(data_dir / "memory.sqlite", isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            status, body = await _call(url, "GET", "/ready")
            assert (status, body["store"]) == (503, "not_writable")
        finally:
            other.execute("ROLLBACK")
            other.close()
        # the lock is back: ready again, and chat works
        assert (await _call(url, "GET", "/ready"))[0] == 200
        result = await stream_chat(url, mint(), "How many technicians are active?")
        assert result.terminal["event"] == "complete"
