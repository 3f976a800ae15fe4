"""One behavioural suite, run on the in-process limiter (fake clock) and on Redis (real time).

Both backends must give the same answers for the same sequence of calls. Redis runs against the
real server at 127.0.0.1:6379 with a unique key prefix per test; its waits are 1-2 s windows.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.auth import Principal
from gateway.rate_limit import InProcessLimiter, Lease, LimitDecision, Limiter, LimitsConfig
from gateway.redis_limits import RedisLimiter

REDIS_URL = "redis://127.0.0.1:6379/0"
U, C, T, S = "user-requests", "company-requests", "company-tokens", "user-streams"
ALICE = Principal("alice", "acme", "iss", 0.0)
BOB = Principal("bob", "acme", "iss", 0.0)
CAROL = Principal("carol", "acme", "iss", 0.0)
ZED = Principal("zed", "globex", "iss", 0.0)


async def require_redis() -> None:
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        pytest.fail(
            "Redis not reachable at 127.0.0.1:6379 — start it with: redis-server --daemonize yes "
            f"--port 6379 --bind 127.0.0.1 ({exc!r})"
        )
    finally:
        await client.aclose()


async def delete_prefix(prefix: str) -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@dataclass
class Harness:
    """A backend plus a way to let time pass on its clock."""

    name: str
    build: Callable[[LimitsConfig], Limiter]
    advance: Callable[[float], Awaitable[None]]
    made: list[Limiter] = field(default_factory=list)

    def limiter(self, **limits: Any) -> Limiter:
        limiter = self.build(LimitsConfig(**limits))
        self.made.append(limiter)
        return limiter


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    if request.param == "memory":
        now = [1000.0]

        async def tick(seconds: float) -> None:
            now[0] += seconds

        yield Harness(
            "memory", lambda cfg: InProcessLimiter(cfg, clock=lambda: now[0]), advance=tick
        )
        return
    await require_redis()
    prefix = f"gwtest-{uuid.uuid4().hex}"
    harness = Harness(
        "redis",
        lambda cfg: RedisLimiter(cfg, REDIS_URL, prefix=prefix, timeout_s=2.0),
        advance=asyncio.sleep,
    )
    try:
        yield harness
    finally:
        for limiter in harness.made:
            await limiter.close()
        await delete_prefix(prefix)


def by_policy(decisions: list[LimitDecision]) -> dict[str, LimitDecision]:
    return {d.policy: d for d in decisions}


async def test_user_window_allows_exactly_the_limit_then_retry_after_frees_it(
    harness: Harness,
) -> None:
    limiter = harness.limiter(user_requests=3, user_window_s=1, company_requests=100)
    remaining = []
    for _ in range(3):
        decisions = by_policy(await limiter.admit(ALICE))
        assert all(d.allowed for d in decisions.values())
        remaining.append(decisions[U].remaining)
    assert remaining == [2, 1, 0]
    denied = by_policy(await limiter.admit(ALICE))[U]
    assert not denied.allowed
    assert (denied.remaining, denied.limit, denied.window_s) == (0, 3, 1)
    assert 0 < denied.retry_after_s <= 1
    assert denied.reset_s == denied.retry_after_s
    await harness.advance(denied.retry_after_s)
    assert by_policy(await limiter.admit(ALICE))[U].allowed


async def test_a_denied_admission_consumes_nothing_and_tenants_are_isolated(
    harness: Harness,
) -> None:
    limiter = harness.limiter(user_requests=2, company_requests=3)
    for _ in range(2):
        assert all(d.allowed for d in await limiter.admit(ALICE))
    over = by_policy(await limiter.admit(ALICE))
    assert not over[U].allowed
    assert (over[C].allowed, over[C].remaining) == (True, 1)  # alice's denial took nothing
    assert by_policy(await limiter.admit(BOB))[C].remaining == 0
    company_full = by_policy(await limiter.admit(BOB))
    assert not company_full[C].allowed
    assert (company_full[U].allowed, company_full[U].remaining) == (True, 1)
    assert not by_policy(await limiter.admit(CAROL))[C].allowed  # the cap bounds all its users
    other = by_policy(await limiter.admit(ZED))
    assert all(d.allowed for d in other.values())
    assert (other[U].remaining, other[C].remaining) == (1, 2)


async def test_token_budget_is_post_paid(harness: Harness) -> None:
    limiter = harness.limiter(company_tokens=100, company_token_window_s=1)
    assert by_policy(await limiter.admit(ALICE))[T].remaining == 100
    await limiter.charge_tokens(ALICE, 60)
    assert by_policy(await limiter.admit(BOB))[T].remaining == 40
    await harness.advance(0.3)
    await limiter.charge_tokens(BOB, 60)  # the crossing run completed; it is charged in full
    spent = by_policy(await limiter.admit(ALICE))
    assert not spent[T].allowed
    assert 0 < spent[T].retry_after_s <= 1
    assert spent[U].remaining == spent[U].limit - 1  # only her first admission counts
    await harness.advance(spent[T].retry_after_s)
    again = by_policy(await limiter.admit(ZED))
    assert again[T].allowed  # another company never shared the budget
    assert by_policy(await limiter.admit(ALICE))[T].remaining == 40  # the first charge expired


async def test_token_charges_are_validated(harness: Harness) -> None:
    limiter = harness.limiter(company_tokens=100)
    await limiter.charge_tokens(ALICE, 0)
    for bad in (-5, True):
        with pytest.raises(ValueError, match="non-negative"):
            await limiter.charge_tokens(ALICE, bad)
    assert by_policy(await limiter.admit(ALICE))[T].remaining == 100


async def test_stream_leases_acquire_deny_release(harness: Harness) -> None:
    limiter = harness.limiter(user_streams=2, lease_ttl_s=30)
    first = await limiter.acquire_stream(ALICE)
    second = await limiter.acquire_stream(ALICE)
    assert isinstance(first, Lease)
    assert isinstance(second, Lease)
    assert first != second
    denied = await limiter.acquire_stream(ALICE)
    assert isinstance(denied, LimitDecision)
    assert (denied.allowed, denied.policy, denied.limit, denied.remaining) == (False, S, 2, 0)
    assert 0 < denied.retry_after_s <= 30
    assert isinstance(await limiter.acquire_stream(BOB), Lease)  # per user
    await limiter.release(first)
    await limiter.release(first)  # double release is harmless...
    await limiter.release(Lease(first.key, "never-issued"))
    third = await limiter.acquire_stream(ALICE)
    assert isinstance(third, Lease)
    assert isinstance(await limiter.acquire_stream(ALICE), LimitDecision)  # ...and frees one slot


async def test_a_crashed_holders_leases_expire_after_the_ttl(harness: Harness) -> None:
    limiter = harness.limiter(user_streams=2, lease_ttl_s=1)
    assert isinstance(await limiter.acquire_stream(ALICE), Lease)
    assert isinstance(await limiter.acquire_stream(ALICE), Lease)
    denied = await limiter.acquire_stream(ALICE)
    assert isinstance(denied, LimitDecision)
    assert 0 < denied.retry_after_s <= 1
    await harness.advance(denied.retry_after_s)  # the holder never released
    assert isinstance(await limiter.acquire_stream(ALICE), Lease)


async def test_renew_keeps_a_lease_past_its_first_ttl(harness: Harness) -> None:
    limiter = harness.limiter(user_streams=2, lease_ttl_s=1)
    kept = await limiter.acquire_stream(ALICE)
    assert isinstance(kept, Lease)
    assert isinstance(await limiter.acquire_stream(ALICE), Lease)
    await harness.advance(0.6)
    await limiter.renew(kept)
    await harness.advance(0.6)  # the unrenewed lease has lapsed, the renewed one has not
    assert isinstance(await limiter.acquire_stream(ALICE), Lease)
    assert isinstance(await limiter.acquire_stream(ALICE), LimitDecision)
    await limiter.release(kept)
    assert isinstance(await limiter.acquire_stream(ALICE), Lease)


async def test_renewing_a_lapsed_lease_retakes_it_only_if_a_slot_is_free(harness: Harness) -> None:
    limiter = harness.limiter(user_streams=1, lease_ttl_s=1)
    lapsed = await limiter.acquire_stream(ALICE)
    assert isinstance(lapsed, Lease)
    await harness.advance(1.05)
    taker = await limiter.acquire_stream(ALICE)
    assert isinstance(taker, Lease)
    await limiter.renew(lapsed)  # no room: the slot stays with the new holder
    await limiter.release(taker)
    await limiter.renew(lapsed)  # room again: retaken
    assert isinstance(await limiter.acquire_stream(ALICE), LimitDecision)


async def test_ids_with_separator_characters_do_not_collide(harness: Harness) -> None:
    limiter = harness.limiter(user_requests=1, user_streams=1)
    tricky = [
        Principal("a:b", "c", "iss", 0.0),
        Principal("b", "c:a", "iss", 0.0),
        Principal("a/b", "c", "iss", 0.0),
        Principal("b", "c}{a", "iss", 0.0),
    ]
    for principal in tricky:
        assert by_policy(await limiter.admit(principal))[U].allowed
        assert isinstance(await limiter.acquire_stream(principal), Lease)


async def test_token_retry_after_walks_many_small_charges(harness: Harness) -> None:
    limiter = harness.limiter(company_tokens=10, company_token_window_s=2)
    for _ in range(100):  # more charges than one page of the Redis walk
        await limiter.charge_tokens(ALICE, 1)
    await harness.advance(0.5)
    spent = by_policy(await limiter.admit(ALICE))[T]
    assert not spent.allowed
    assert 0 < spent.retry_after_s <= 1.5  # the 91st charge's expiry, not a whole window
    await harness.advance(spent.retry_after_s)
    again = by_policy(await limiter.admit(ALICE))[T]
    assert again.allowed
    assert again.remaining >= 1
