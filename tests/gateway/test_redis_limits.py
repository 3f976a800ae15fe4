"""The Redis limiter alone: exactness across replicas, failure modes, bounded key lifetimes."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.auth import Principal
from gateway.rate_limit import Lease, LimiterUnavailable, LimitsConfig
from gateway.redis_limits import RedisLimiter

pytestmark = pytest.mark.redis

REDIS_URL = "redis://127.0.0.1:6379/0"
ALICE = Principal("alice", "acme", "iss", 0.0)


@pytest.fixture
async def client() -> AsyncIterator[aioredis.Redis]:
    redis = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=2)
    try:
        await redis.ping()
    except (RedisError, OSError) as exc:
        await redis.aclose()
        pytest.fail(
            "Redis not reachable at 127.0.0.1:6379 — start it with: redis-server --daemonize yes "
            f"--port 6379 --bind 127.0.0.1 ({exc!r})"
        )
    yield redis
    await redis.aclose()


@pytest.fixture
async def prefix(client: aioredis.Redis) -> AsyncIterator[str]:
    name = f"gwtest-{uuid.uuid4().hex}"
    yield name
    keys = [key async for key in client.scan_iter(match=f"{name}:*", count=500)]
    if keys:
        await client.delete(*keys)


@pytest.fixture
async def replicas(prefix: str) -> AsyncIterator[Callable[..., list[RedisLimiter]]]:
    made: list[RedisLimiter] = []

    def build(count: int, url: str = REDIS_URL, **options: Any) -> list[RedisLimiter]:
        limits = options.pop("limits", LimitsConfig())
        options.setdefault("timeout_s", 5.0)  # a loaded CI box must not turn into a 503
        group = [RedisLimiter(limits, url, prefix=prefix, **options) for _ in range(count)]
        made.extend(group)
        return group

    yield build
    for limiter in made:
        await limiter.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_replicas_admit_exactly_the_company_limit(
    replicas: Callable[..., list[RedisLimiter]],
) -> None:
    limits = LimitsConfig(user_requests=1000, company_requests=25, company_window_s=60)
    group = replicas(4, limits=limits)
    users = [Principal(f"user-{i}", "acme", "iss", 0.0) for i in range(40)]
    calls = [group[i % 4].admit(users[i % 40]) for i in range(200)]
    results = await asyncio.gather(*calls)
    admitted = sum(all(d.allowed for d in decisions) for decisions in results)
    assert admitted == 25


async def test_replicas_admit_exactly_the_user_limit(
    replicas: Callable[..., list[RedisLimiter]],
) -> None:
    group = replicas(3, limits=LimitsConfig(user_requests=10, company_requests=10_000))
    results = await asyncio.gather(*(group[i % 3].admit(ALICE) for i in range(150)))
    assert sum(all(d.allowed for d in decisions) for decisions in results) == 10
    # Atomic check-and-consume: each admitted call saw a different count.
    seen = sorted(ds[0].remaining for ds in results if all(d.allowed for d in ds))
    assert seen == list(range(10))


async def test_replicas_grant_exactly_the_stream_limit(
    replicas: Callable[..., list[RedisLimiter]],
) -> None:
    group = replicas(3, limits=LimitsConfig(user_streams=5))
    got = await asyncio.gather(*(group[i % 3].acquire_stream(ALICE) for i in range(90)))
    leases = [g for g in got if isinstance(g, Lease)]
    assert len(leases) == 5
    assert len({lease.lease_id for lease in leases}) == 5
    await asyncio.gather(*(group[0].release(lease) for lease in leases))
    assert isinstance(await group[2].acquire_stream(ALICE), Lease)


async def test_a_lost_running_total_is_rebuilt_from_the_charge_log(
    replicas: Callable[..., list[RedisLimiter]], client: aioredis.Redis, prefix: str
) -> None:
    (limiter,) = replicas(1, limits=LimitsConfig(company_tokens=100))
    await limiter.charge_tokens(ALICE, 25)
    await limiter.charge_tokens(ALICE, 35)
    await client.delete(f"{prefix}:{{acme}}:tt")
    tokens = (await limiter.admit(ALICE))[2]
    assert (tokens.policy, tokens.remaining) == ("company-tokens", 40)


async def test_every_key_expires_so_idle_state_cannot_pile_up(
    replicas: Callable[..., list[RedisLimiter]], client: aioredis.Redis, prefix: str
) -> None:
    limits = LimitsConfig(user_window_s=60, company_window_s=120, company_token_window_s=3600)
    (limiter,) = replicas(1, limits=limits)
    await limiter.admit(ALICE)
    await limiter.charge_tokens(ALICE, 10)
    lease = await limiter.acquire_stream(ALICE)
    assert isinstance(lease, Lease)
    await limiter.renew(lease)
    keys = sorted([key.decode() async for key in client.scan_iter(match=f"{prefix}:*")])
    assert keys == [
        f"{prefix}:{{acme}}:c",
        f"{prefix}:{{acme}}:s:alice",
        f"{prefix}:{{acme}}:t",
        f"{prefix}:{{acme}}:tt",
        f"{prefix}:{{acme}}:u:alice",
    ]
    expected_max_ms = {"c": 120_000, "s:alice": 60_000, "t": 3_600_000, "tt": 3_600_000}
    expected_max_ms["u:alice"] = 60_000
    for key in keys:
        kind = key.split("}:", 1)[1]
        assert 0 < await client.pttl(key) <= expected_max_ms[kind], key


async def test_redis_down_fails_closed_within_the_timeout(
    replicas: Callable[..., list[RedisLimiter]],
) -> None:
    (limiter,) = replicas(1, url=f"redis://127.0.0.1:{closed_port()}/0", timeout_s=0.2)
    async with asyncio.timeout(5):  # bounded: a hang fails the test instead of stalling it
        with pytest.raises(LimiterUnavailable) as caught:
            await limiter.admit(ALICE)
        with pytest.raises(LimiterUnavailable):
            await limiter.acquire_stream(ALICE)
        # Endings never raise: the lease TTL is the backstop, a lost charge only under-counts.
        await limiter.release(Lease("gw:{acme}:s:alice", "x"))
        await limiter.renew(Lease("gw:{acme}:s:alice", "x"))
        await limiter.charge_tokens(ALICE, 10)
    assert (caught.value.status, caught.value.code, caught.value.retryable) == (
        503,
        "UPSTREAM_UNAVAILABLE",
        True,
    )


async def test_redis_down_fails_open_when_configured(
    replicas: Callable[..., list[RedisLimiter]],
) -> None:
    (limiter,) = replicas(
        1, url=f"redis://127.0.0.1:{closed_port()}/0", timeout_s=0.2, fail_open=True
    )
    async with asyncio.timeout(5):
        assert await limiter.admit(ALICE) == []  # admitted; no RateLimit numbers to report
        lease = await limiter.acquire_stream(ALICE)
        assert isinstance(lease, Lease)
        await limiter.release(lease)


async def blackhole() -> tuple[asyncio.Server, int]:
    """A TCP server that accepts connections and never answers: a hung Redis."""

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(4096):
            pass
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.mark.parametrize("fail_open", [False, True])
async def test_a_hung_redis_is_cut_off_by_the_timeout(
    replicas: Callable[..., list[RedisLimiter]], fail_open: bool
) -> None:
    server, port = await blackhole()
    try:
        (limiter,) = replicas(
            1, url=f"redis://127.0.0.1:{port}/0", timeout_s=0.2, fail_open=fail_open
        )
        async with asyncio.timeout(5):
            if fail_open:
                assert await limiter.admit(ALICE) == []
            else:
                with pytest.raises(LimiterUnavailable):
                    await limiter.admit(ALICE)
            await limiter.release(Lease("gw:{acme}:s:alice", "x"))
        await limiter.close()
    finally:
        server.close()
        await server.wait_closed()
