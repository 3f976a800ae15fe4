"""A replica killed (kill -9) mid-answer: its conversation is free again within the busy lease
(`AGENT_RUN_LEASE_S`, 5 s), not 30 s, on the replicas still running."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
from support.pg_database import dsn_for, fresh_database
from support.servers import serve_asgi
from support.sse_client import stream_chat

from agent_service.app import create_app
from agent_service.settings import AgentSettings

Mint = Callable[..., str]
LEASE_S = 5.0


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with fresh_database("agent_kill") as name:
        yield name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _wait_ready(url: str, proc: asyncio.subprocess.Process, within: float = 60) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            assert proc.returncode is None, "the agent exited at start-up"
            try:
                async with session.get(f"{url}/ready") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the agent did not become ready")


async def test_a_conversation_served_by_a_killed_replica_is_free_within_the_lease(
    database: str, tmp_path: Path, mint: Mint
) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "AGENT_ENV": "test",
        "AGENT_DATABASE_URL": dsn_for(database),
        "AGENT_DATA_DIR": str(tmp_path / "killed"),
        "AGENT_OFFLINE_PACE_MS": "200",  # a slow answer: still streaming when killed
        "AGENT_PORT": str(port),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent_service.cli",
        "serve",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    victim = f"http://127.0.0.1:{port}"
    try:
        await _wait_ready(victim, proc)
        body = {
            "input": {"message": "hello there"},
            "conversation": {"id": "killed", "user_id": "u-alice", "company_id": "acme-hvac"},
        }
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{victim}/internal/chat/stream",
                json=body,
                headers={"Authorization": f"Bearer {mint()}"},
            ) as resp,
        ):
            assert resp.status == 200
            while b"event: token" not in await resp.content.readany():
                pass
            os.kill(proc.pid, signal.SIGKILL)  # mid-answer, holding the conversation's lease
            killed_at = time.monotonic()
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()

    settings = AgentSettings(
        env="test",
        data_dir=tmp_path / "survivor",
        database_url=dsn_for(database),
        busy_wait_s=0.2,
    )
    async with serve_asgi(create_app(settings)) as survivor:
        while True:
            result = await stream_chat(survivor, mint(), "hello there", conversation="killed")
            if result.status == 200:
                break
            assert result.status == 409, result.events
            assert time.monotonic() - killed_at < LEASE_S + 2, "still busy after the lease"
            await asyncio.sleep(0.1)
        freed_after = time.monotonic() - killed_at
    assert result.terminal["event"] == "complete"
    assert freed_after < LEASE_S + 2
