"""`agent-service serve --workers N`: several serving processes on one port, sharing PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from support.pg_database import dsn_for, fresh_database
from support.sse_client import stream_chat

from agent_service.cli import main

Mint = Callable[..., str]


def test_more_than_one_worker_on_sqlite_is_refused_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AGENT_DATABASE_URL", raising=False)
    monkeypatch.setenv("AGENT_DATA_DIR", str(tmp_path))
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--workers", "2"])
    assert "AGENT_DATABASE_URL" in str(exc.value)


def _workers(pid: int) -> list[int]:
    """The serving processes a supervisor spawned (not helpers such as a resource tracker)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


@pytest.mark.postgres
async def test_two_workers_serve_one_port_and_share_conversations(
    tmp_path: Path, mint: Mint
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with fresh_database() as database:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AGENT_")},
            "AGENT_ENV": "test",
            "AGENT_DATA_DIR": str(tmp_path),
            "AGENT_DATABASE_URL": dsn_for(database),
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent_service.cli", "serve", "--workers", "2",
            "--port", str(port), env=env,
        )  # fmt: skip
        try:
            async with aiohttp.ClientSession() as session:
                for _ in range(300):
                    try:
                        async with session.get(f"{url}/ready") as resp:
                            if resp.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.1)
                else:
                    pytest.fail("two workers did not get ready")
            assert len(_workers(proc.pid)) == 2
            first = await stream_chat(url, mint(), "How many technicians are active?")
            assert first.terminal["event"] == "complete"
            # the follow-up lands on whichever worker accepts it: memory is in PostgreSQL
            for _ in range(3):
                follow = await stream_chat(url, mint(), "and how many are on leave?")
                assert follow.terminal["event"] == "complete"
                assert "leave" in follow.answer
        finally:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 30)


async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    for _ in range(300):
        try:
            return await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
    pytest.fail("the service did not start")


async def test_an_idle_connection_is_kept_for_agent_keepalive_s(tmp_path: Path) -> None:
    """The gateway's pool drops idle connections after 15 s; the service keeps them longer
    (`AGENT_KEEPALIVE_S`), and closes them once that has passed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AGENT_")},
        "AGENT_ENV": "test",
        "AGENT_DATA_DIR": str(tmp_path),
        "AGENT_KEEPALIVE_S": "1.5",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent_service.cli", "serve", "--port", str(port), env=env
    )
    try:
        reader, writer = await _connect(port)
        request = b"GET /health HTTP/1.1\r\nHost: agent\r\n\r\n"
        try:
            writer.write(request)
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
            await asyncio.sleep(0.5)  # idle, but within the keep-alive: it serves again
            await reader.read(4096)  # the rest of the first reply
            writer.write(request)
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
            await reader.read(4096)
            # past the keep-alive (1.5 s here; uvicorn's own default is 5 s) the service closes it
            assert await asyncio.wait_for(reader.read(), timeout=4.5) == b""
        finally:
            writer.close()
    finally:
        proc.terminate()
        await proc.wait()
