"""`gateway serve` as a process: refuses unsafe settings, and drains streams on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

import aiohttp
import pytest
from support.gateway_harness import FakeUpstream, Hang

from contracts.agent_api import TokenEvent
from gateway.auth import mint_dev_token
from gateway.cli import main
from gateway.settings import GatewaySettings


def test_unsafe_production_settings_refuse_to_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GATEWAY_ENV", "production")
    assert main(["serve"]) == 2
    assert "GATEWAY_INTERNAL_KEY is the development secret" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_sigterm_ends_open_streams_with_shutting_down(upstream: FakeUpstream) -> None:
    upstream.script = [TokenEvent(channel="final", content="Working"), Hang()]
    port = free_port()
    env = {
        **os.environ,
        "GATEWAY_ENV": "development",
        "GATEWAY_AGENT_URL": upstream.url,
        "GATEWAY_PORT": str(port),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "serve", env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        base = f"http://127.0.0.1:{port}"
        token = mint_dev_token(
            GatewaySettings(env="development").jwt_config(),
            user_id="u-alice",
            company_id="acme-hvac",
        )
        async with aiohttp.ClientSession() as s:
            async with asyncio.timeout(30):
                while True:
                    try:
                        async with s.get(f"{base}/healthz") as resp:
                            if resp.status == 200:
                                break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.05)
            stream = await s.post(
                f"{base}/api/chat/stream",
                json={"message": "hi"},
                headers={"Authorization": f"Bearer {token}"},
            )
            while b"Working" not in await stream.content.readany():
                pass
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                tail = await stream.content.read()
            stream.close()
        assert b"event: error" in tail
        assert b'"code":"SHUTTING_DOWN"' in tail
        async with asyncio.timeout(30):
            assert await process.wait() == 0
        async with asyncio.timeout(10):
            await upstream.disconnected.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_sigterm_with_a_drain_period_answers_503_while_open_streams_go_on(
    upstream: FakeUpstream,
) -> None:
    """Issue 11.11: behind a load balancer the replica must be seen leaving: with
    GATEWAY_DRAIN_S it keeps listening, answers new requests and /readyz with 503, lets open
    streams go on, and only then shuts down as usual."""
    upstream.script = [TokenEvent(channel="final", content="Working"), Hang()]
    port = free_port()
    env = {
        **os.environ,
        "GATEWAY_ENV": "development",
        "GATEWAY_AGENT_URL": upstream.url,
        "GATEWAY_PORT": str(port),
        "GATEWAY_DRAIN_S": "2",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "serve", env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        base = f"http://127.0.0.1:{port}"
        token = mint_dev_token(
            GatewaySettings(env="development").jwt_config(),
            user_id="u-alice",
            company_id="acme-hvac",
        )
        auth = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession() as s:
            async with asyncio.timeout(30):
                while True:
                    try:
                        async with s.get(f"{base}/healthz") as resp:
                            if resp.status == 200:
                                break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.05)
            stream = await s.post(f"{base}/api/chat/stream", json={"message": "hi"}, headers=auth)
            while b"Working" not in await stream.content.readany():
                pass
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(10):
                while True:  # each probe is a round trip; the signal lands within a few
                    async with s.get(f"{base}/readyz") as resp:
                        if resp.status == 503:
                            assert (await resp.json())["status"] == "shutting_down"
                            break
            async with s.post(
                f"{base}/api/chat/stream", json={"message": "new"}, headers=auth
            ) as refused:
                assert refused.status == 503
                assert (await refused.json())["error"]["code"] == "SHUTTING_DOWN"
            assert not stream.content.at_eof()  # the open stream is still going
            async with asyncio.timeout(30):
                tail = await stream.content.read()
            stream.close()
        assert b'"code":"SHUTTING_DOWN"' in tail
        async with asyncio.timeout(30):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
