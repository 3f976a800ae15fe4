"""`gateway serve --workers N`: N processes on one port (SO_REUSEPORT) sharing Redis."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest
from support.gateway_harness import FakeUpstream

from contracts.agent_api import TokenEvent
from gateway.auth import mint_dev_token
from gateway.cli import _exit_status, main
from gateway.settings import GatewaySettings


def test_more_than_one_worker_without_redis_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GATEWAY_REDIS_URL", raising=False)
    monkeypatch.setenv("GATEWAY_ENV", "development")
    assert main(["serve", "--workers", "2"]) == 2
    assert "GATEWAY_REDIS_URL" in capsys.readouterr().err


def _workers(pid: int) -> list[int]:
    """The serving processes a supervisor spawned (not helpers such as a resource tracker)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


async def _two_workers(upstream: FakeUpstream) -> tuple[asyncio.subprocess.Process, int]:
    """`gateway serve --workers 2` on a free port over Redis; the supervisor and its port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "GATEWAY_ENV": "development",
        "GATEWAY_AGENT_URL": upstream.url,
        "GATEWAY_PORT": str(port),
        "GATEWAY_REDIS_URL": "redis://127.0.0.1:6379/0",
        "GATEWAY_REDIS_PREFIX": f"test-workers-{uuid.uuid4().hex[:8]}",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "serve", "--workers", "2", env=env
    )
    return process, port


@pytest.mark.redis
async def test_two_workers_serve_one_port_and_stop_together(upstream: FakeUpstream) -> None:
    upstream.script = [TokenEvent(channel="final", content="Hello")]
    process, port = await _two_workers(upstream)
    try:
        base = f"http://127.0.0.1:{port}"
        token = mint_dev_token(
            GatewaySettings(env="development").jwt_config(),
            user_id="u-alice",
            company_id="acme-hvac",
        )
        async with aiohttp.ClientSession() as s:
            async with asyncio.timeout(60):
                while True:
                    try:
                        async with s.get(f"{base}/readyz") as resp:
                            if resp.status == 200:
                                break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.05)
            assert len(_workers(process.pid)) == 2
            for _ in range(4):  # fresh connections: the kernel may hand each to either worker
                async with (
                    aiohttp.ClientSession() as fresh,
                    fresh.post(
                        f"{base}/api/chat/stream",
                        json={"message": "hi"},
                        headers={"Authorization": f"Bearer {token}"},
                    ) as resp,
                ):
                    body = await resp.read()
                assert resp.status == 200
                assert b"Hello" in body
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.parametrize(
    ("code", "stopped", "status"),
    [
        (0, False, 0),
        (None, False, 0),
        (3, True, 3),  # a worker that failed is a failure even while stopping
        (-signal.SIGTERM, True, 0),  # ended by the SIGTERM it was sent (still starting)
        (-signal.SIGINT, True, 0),
        (-signal.SIGTERM, False, 128 + signal.SIGTERM),  # killed by someone else: a failure
        (-signal.SIGKILL, True, 128 + signal.SIGKILL),  # the OOM killer is never "as asked"
    ],
)
def test_the_supervisor_reports_a_worker_stopped_as_asked_as_a_clean_exit(
    code: int | None, stopped: bool, status: int
) -> None:
    assert _exit_status(code, stopped=stopped) == status


@pytest.mark.redis
async def test_sigterm_while_the_workers_still_start_is_a_clean_stop(
    upstream: FakeUpstream,
) -> None:
    """A stop that reaches a worker before it installed its handler (it is still importing)
    kills it with the signal's default action: that is the stop that was asked for."""
    process, _ = await _two_workers(upstream)
    try:
        for _ in range(3000):  # both spawned, neither serving yet
            if len(_workers(process.pid)) == 2:
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the workers were not spawned")
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
