"""Redis stopped and restarted under traffic: the gateways fail closed with a clear 503, never hang,
and serve again once Redis is back.

The test runs its OWN redis-server on a free port (the machine's shared Redis on 6379 is never
stopped) and gateway replicas pointed at it, over the session stack's agent replicas.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from support.deploy_stack import (
    Reply,
    ask,
    call,
    free_ports,
    load_topology,
    redis_cli,
    redis_pong,
    unique,
    user_token,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(240)]

CLIENT_LIMIT_S = 20.0
"""Every call's bound at the client: a call that hangs fails the test instead of hanging it."""
QUESTION = "How many technicians are active?"


@dataclass(slots=True)
class OwnRedis:
    """A redis-server of this test only: started, stopped (shutdown nosave) and started again."""

    port: int
    workdir: Path

    def start(self) -> None:
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is not installed (apt-get install redis-server)")
        subprocess.run(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "yes",
                "--dir",
                str(self.workdir),
                "--pidfile",
                str(self.workdir / "redis.pid"),
            ],
            check=True,
            capture_output=True,
            timeout=10,
        )
        self._wait(up=True)

    def stop(self) -> None:
        redis_cli(self.port, "shutdown", "nosave")
        self._wait(up=False)

    def _wait(self, *, up: bool) -> None:
        for _ in range(100):
            if redis_pong(self.port) == up:
                return
            subprocess.run(["sleep", "0.05"], check=True)
        pytest.fail(f"own redis-server on {self.port} did not {'start' if up else 'stop'}")


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(free_ports(1)[0], tmp_path)
    server.start()
    try:
        yield server
    finally:
        if redis_pong(server.port):
            server.stop()


@pytest.fixture
def outage_gateways(stack: Any, own_redis: OwnRedis) -> Iterator[dict[str, str]]:
    """Two fail-closed gateway replicas and one fail-open, all on the test's own Redis."""
    topology = load_topology()
    names = ["closed-1", "closed-2", "open-1"]
    replicas = []
    for name, port in zip(names, free_ports(len(names)), strict=True):
        replicas.append(
            stack.gateway_replica(
                f"gateway-{name}",
                port,
                GATEWAY_REDIS_URL=f"redis://127.0.0.1:{own_redis.port}/0",
                GATEWAY_REDIS_PREFIX=unique("gw-outage"),
                GATEWAY_REDIS_TIMEOUT_S="0.5",
                GATEWAY_REDIS_FAIL_OPEN="true" if name.startswith("open") else "false",
                GATEWAY_LIMIT_USER_REQUESTS="100000",
            )
        )
    try:
        for replica in replicas:
            replica.start()
        topology.wait_healthy(replicas, 60)
        yield {name: replica.url for name, replica in zip(names, replicas, strict=True)}
    finally:
        for replica in replicas:
            replica.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    timeout = aiohttp.ClientTimeout(total=CLIENT_LIMIT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        yield session


@dataclass(slots=True)
class Traffic:
    """Requests sent in a loop to the fail-closed gateways until stopped; every reply kept."""

    replies: list[Reply] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, http: aiohttp.ClientSession, gateway: str, token: str) -> None:
        while not self.stop.is_set():
            self.replies.append(await ask(http, gateway, token, QUESTION, unique("conv")))
            await asyncio.sleep(0.02)


def is_limiter_outage(reply: Reply) -> bool:
    """The documented refusal: 503 with a code, a message and retryable, as JSON."""
    error = reply.body.get("error", {})
    return (
        reply.status == 503
        and error.get("code") == "UPSTREAM_UNAVAILABLE"
        and "rate limiter" in error.get("message", "")
        and error.get("retryable") is True
    )


async def until_admitted(http: aiohttp.ClientSession, gateway: str, token: str) -> Reply:
    """Ask until a reply is not a limiter outage (the first call may meet a dead connection)."""
    reply = await ask(http, gateway, token, QUESTION, unique("conv"))
    for _ in range(49):
        if not is_limiter_outage(reply):
            break
        await asyncio.sleep(0.1)
        reply = await ask(http, gateway, token, QUESTION, unique("conv"))
    return reply


async def test_redis_stopped_and_restarted_mid_traffic(
    stack: Any,
    own_redis: OwnRedis,
    outage_gateways: dict[str, str],
    http: aiohttp.ClientSession,
) -> None:
    closed = [outage_gateways["closed-1"], outage_gateways["closed-2"]]
    token = user_token(stack.config, unique("u-outage"))
    traffic = Traffic()
    runners = [asyncio.create_task(traffic.run(http, gateway, token)) for gateway in closed]
    try:
        # Before: traffic flows through both gateways.
        for gateway in closed:
            assert (await ask(http, gateway, token, QUESTION, unique("conv"))).status == 200

        await asyncio.to_thread(own_redis.stop)
        during = await asyncio.gather(
            *(ask(http, closed[i % 2], token, QUESTION, unique("conv")) for i in range(20)),
            call(http, "POST", f"{closed[0]}/api/chat/stream", token, {"message": QUESTION}),
        )
        assert all(is_limiter_outage(reply) for reply in during), [
            (r.status, r.body) for r in during if not is_limiter_outage(r)
        ]
        # Fail open is the other documented choice: that replica keeps admitting.
        fail_open = await ask(http, outage_gateways["open-1"], token, QUESTION, unique("conv"))
        assert fail_open.status == 200, fail_open.body
        # Liveness does not depend on Redis: the replicas are not restarted for an outage.
        assert (await call(http, "GET", f"{closed[0]}/healthz", token)).status == 200

        await asyncio.to_thread(own_redis.start)
        for gateway in closed:
            back = await until_admitted(http, gateway, token)
            assert back.status == 200, back.body
            again = await ask(http, gateway, token, QUESTION, unique("conv"))
            assert again.status == 200, again.body
    finally:
        traffic.stop.set()
        await asyncio.gather(*runners, return_exceptions=True)

    # Under traffic through the whole outage, every call was answered (none hung past the
    # client's bound; the runners would have raised) with either an answer or the refusal.
    for runner in runners:
        assert runner.exception() is None, runner.exception()
    assert traffic.replies
    odd = [(r.status, r.body) for r in traffic.replies if r.status != 200]
    assert all(status == 503 for status, _ in odd), odd
    assert all(is_limiter_outage(r) for r in traffic.replies if r.status != 200)
    assert any(r.status == 503 for r in traffic.replies)
