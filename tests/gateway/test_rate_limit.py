"""Rate-limit arithmetic and headers from tables; in-process properties on a fake clock."""

from __future__ import annotations

import random
from typing import Any

import pytest

from gateway.auth import Principal
from gateway.rate_limit import (
    InProcessLimiter,
    LimitDecision,
    LimitsConfig,
    admit_decisions,
    check_tokens,
    lease_decision,
    rate_limit_headers,
    token_decision,
    window_decision,
)

U, C, T, S = "user-requests", "company-requests", "company-tokens", "user-streams"


def allow(policy: str, limit: int, remaining: int, reset: float, window: int) -> LimitDecision:
    return LimitDecision(True, policy, limit, remaining, reset, window, 0.0)


def deny(policy: str, limit: int, retry: float, window: int) -> LimitDecision:
    return LimitDecision(False, policy, limit, 0, retry, window, retry)


@pytest.mark.parametrize(
    ("head", "used", "now", "consume", "expected"),
    [
        ([], 0, 10.0, True, allow(U, 3, 2, 60.0, 60)),
        ([5.0], 1, 10.0, True, allow(U, 3, 1, 55.0, 60)),
        ([5.0, 6.0], 2, 10.0, True, allow(U, 3, 0, 55.0, 60)),
        ([1.0, 2.0, 3.0], 3, 10.0, True, deny(U, 3, 51.0, 60)),
        # a denial that is not this policy's fault takes nothing from it
        ([], 0, 10.0, False, allow(U, 3, 3, 0.0, 60)),
        ([5.0, 6.0], 2, 10.0, False, allow(U, 3, 1, 55.0, 60)),
        ([1.0, 2.0, 3.0], 3, 10.0, False, deny(U, 3, 51.0, 60)),
        # more live stamps than the limit (the limit was lowered): wait for enough to expire
        ([1.0, 2.0, 3.0], 5, 10.0, True, deny(U, 3, 53.0, 60)),
        # the retry is exact: the oldest stamp leaves at stamp + window
        ([0.5], 1, 1.4, True, deny(U, 1, 0.1, 1)),
    ],
)
def test_window_decision(
    head: list[float], used: int, now: float, consume: bool, expected: LimitDecision
) -> None:
    limit = expected.limit
    window = expected.window_s
    got = window_decision(
        U, head, used=used, now=now, limit=limit, window_s=window, consume=consume
    )
    _close(got, expected)


def _close(got: LimitDecision, expected: LimitDecision) -> None:
    assert (got.allowed, got.policy, got.limit, got.remaining, got.window_s) == (
        expected.allowed,
        expected.policy,
        expected.limit,
        expected.remaining,
        expected.window_s,
    )
    assert got.reset_s == pytest.approx(expected.reset_s)
    assert got.retry_after_s == pytest.approx(expected.retry_after_s)


@pytest.mark.parametrize(
    ("charges", "used", "budget", "expected"),
    [
        ([], 0, 100, allow(T, 100, 100, 0.0, 60)),
        ([(0.0, 60)], 60, 100, allow(T, 100, 40, 50.0, 60)),
        ([(0.0, 99)], 99, 100, allow(T, 100, 1, 50.0, 60)),
        # post-paid: exactly at the budget is spent
        ([(0.0, 100)], 100, 100, deny(T, 100, 50.0, 60)),
        ([(0.0, 60), (5.0, 60)], 120, 100, deny(T, 100, 50.0, 60)),
        ([(0.0, 30), (1.0, 30), (2.0, 50)], 110, 50, deny(T, 50, 52.0, 60)),
        ([(0.0, 500)], 500, 100, deny(T, 100, 50.0, 60)),
    ],
)
def test_token_decision(
    charges: list[tuple[float, int]], used: int, budget: int, expected: LimitDecision
) -> None:
    got = token_decision(T, charges, used=used, now=10.0, budget=budget, window_s=60)
    _close(got, expected)


@pytest.mark.parametrize(
    ("head", "held", "limit", "expected"),
    [
        ([], 0, 2, LimitDecision(True, S, 2, 1, 0.0, 0, 0.0)),
        ([30.0], 1, 2, LimitDecision(True, S, 2, 0, 0.0, 0, 0.0)),
        ([15.0, 20.0], 2, 2, deny(S, 2, 5.0, 0)),
        ([15.0, 20.0, 40.0], 3, 2, deny(S, 2, 10.0, 0)),
    ],
)
def test_lease_decision(head: list[float], held: int, limit: int, expected: LimitDecision) -> None:
    _close(lease_decision(head, held=held, now=10.0, limit=limit), expected)


def test_admit_decisions_consume_all_or_nothing() -> None:
    config = LimitsConfig(user_requests=2, company_requests=5, company_tokens=100)
    ok = admit_decisions(
        config, now=0.0, user=[], user_used=0, company=[], company_used=0, charges=[], tokens_used=0
    )
    assert [(d.allowed, d.remaining) for d in ok] == [(True, 1), (True, 4), (True, 100)]
    tokens_spent = admit_decisions(
        config,
        now=0.0,
        user=[],
        user_used=0,
        company=[-1.0],
        company_used=1,
        charges=[(-1.0, 100)],
        tokens_used=100,
    )
    assert [(d.allowed, d.remaining) for d in tokens_spent] == [(True, 2), (True, 4), (False, 0)]


@pytest.mark.parametrize(
    ("decisions", "expected"),
    [
        ([], {}),
        (
            [allow(U, 30, 29, 60.0, 60)],
            {
                "RateLimit": '"user-requests";r=29;t=60',
                "RateLimit-Policy": '"user-requests";q=30;w=60',
            },
        ),
        (
            [
                allow(U, 30, 29, 59.9999999, 60),
                allow(C, 300, 120, 12.2, 60),
                allow(T, 1000, 0, 0.0, 3600),
            ],
            {
                "RateLimit": '"user-requests";r=29;t=60, "company-requests";r=120;t=13, '
                '"company-tokens";r=0;t=0',
                "RateLimit-Policy": '"user-requests";q=30;w=60, "company-requests";q=300;w=60, '
                '"company-tokens";q=1000;w=3600',
            },
        ),
        (
            [deny(U, 3, 0.2, 1), allow(C, 300, 299, 60.0, 60)],
            {
                "RateLimit": '"user-requests";r=0;t=1, "company-requests";r=299;t=60',
                "RateLimit-Policy": '"user-requests";q=3;w=1, "company-requests";q=300;w=60',
                "Retry-After": "1",
            },
        ),
        (
            [deny(U, 3, 50.0000001, 60), deny(T, 10, 50.4, 60)],
            {
                "RateLimit": '"user-requests";r=0;t=50, "company-tokens";r=0;t=51',
                "RateLimit-Policy": '"user-requests";q=3;w=60, "company-tokens";q=10;w=60',
                "Retry-After": "51",
            },
        ),
        (
            [deny(S, 3, 42.5, 0)],
            {
                "RateLimit": '"user-streams";r=0;t=43',
                "RateLimit-Policy": '"user-streams";q=3;qu="concurrent-requests"',
                "Retry-After": "43",
            },
        ),
    ],
)
def test_rate_limit_headers(decisions: list[LimitDecision], expected: dict[str, str]) -> None:
    assert rate_limit_headers(decisions) == expected


@pytest.mark.parametrize(
    "kwargs",
    [
        {"user_requests": 0},
        {"company_window_s": 0},
        {"company_tokens": -1},
        {"user_streams": 0},
        {"lease_ttl_s": 0.0},
    ],
)
def test_limits_config_refuses_non_positive_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="positive"):
        LimitsConfig(**kwargs)


@pytest.mark.parametrize("tokens", [-1, 1.5, True, "10", None])
def test_token_charges_must_be_non_negative_integers(tokens: Any) -> None:
    with pytest.raises(ValueError, match="non-negative integer"):
        check_tokens(tokens)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


ALICE = Principal("alice", "acme", "iss", 0.0)


@pytest.mark.parametrize("seed", range(20))
async def test_no_window_ever_holds_more_than_the_limit_and_retry_after_is_exact(seed: int) -> None:
    rng = random.Random(seed)
    limit, window = rng.randint(1, 6), rng.choice([1, 5, 10])
    clock = Clock(1000.0)
    limiter = InProcessLimiter(
        LimitsConfig(user_requests=limit, user_window_s=window, company_requests=10_000),
        clock=clock,
    )
    admitted: list[float] = []
    for _ in range(300):
        # Arrivals cluster around window boundaries, where fixed windows allow a 2x burst.
        clock.now += rng.choice([0.0, 0.001, rng.random() * window, window - 0.001, window])
        user = (await limiter.admit(ALICE))[0]
        live = [t for t in admitted if t + window > clock.now]
        if user.allowed:
            assert len(live) < limit
            admitted.append(clock.now)
        else:
            assert len(live) >= limit
            unblock = live[len(live) - limit] + window  # independent oracle
            assert clock.now + user.retry_after_s == pytest.approx(unblock)
    for i, start in enumerate(admitted):
        in_window = [t for t in admitted[i:] if t < start + window]
        assert len(in_window) <= limit


async def test_waiting_exactly_retry_after_is_enough_and_a_hair_less_is_not() -> None:
    clock = Clock(50.0)
    limiter = InProcessLimiter(LimitsConfig(user_requests=2, user_window_s=10), clock=clock)
    await limiter.admit(ALICE)
    clock.now += 3.25
    await limiter.admit(ALICE)
    denied = (await limiter.admit(ALICE))[0]
    assert not denied.allowed
    assert denied.retry_after_s == pytest.approx(6.75)
    clock.now += denied.retry_after_s - 0.001
    assert not (await limiter.admit(ALICE))[0].allowed
    clock.now += 0.001
    assert (await limiter.admit(ALICE))[0].allowed


async def test_idle_keys_are_swept_so_memory_stays_bounded() -> None:
    clock = Clock(0.0)
    limiter = InProcessLimiter(
        LimitsConfig(user_window_s=10, company_window_s=10, company_token_window_s=20), clock=clock
    )
    for i in range(200):
        principal = Principal(f"user-{i}", f"company-{i % 20}", "iss", 0.0)
        await limiter.admit(principal)
        await limiter.charge_tokens(principal, 5)
        lease = await limiter.acquire_stream(principal)
        assert not isinstance(lease, LimitDecision)
        await limiter.release(lease)
    assert limiter.tracked_keys() >= 200
    clock.now += 21
    await limiter.admit(ALICE)
    assert limiter.tracked_keys() <= 4  # only alice's user, company, charge log and nothing else
