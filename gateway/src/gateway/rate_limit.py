"""Rate limits: sliding-window and lease arithmetic, the in-process limiter, and the IETF headers.

The arithmetic is pure and shared by both backends: a backend gathers the live state of a key
(atomically, in Redis through Lua) and these functions turn it into decisions.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol
from urllib.parse import quote

from gateway.auth import Principal
from gateway.errors import UpstreamUnavailable

USER_REQUESTS: Final = "user-requests"
COMPANY_REQUESTS: Final = "company-requests"
COMPANY_TOKENS: Final = "company-tokens"
USER_STREAMS: Final = "user-streams"


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """Quotas per window; every value must be positive."""

    user_requests: int = 30
    user_window_s: int = 60
    company_requests: int = 300
    company_window_s: int = 60
    company_tokens: int = 200_000
    company_token_window_s: int = 3600
    user_streams: int = 3
    lease_ttl_s: float = 60.0

    def __post_init__(self) -> None:
        bad = [name for name in self.__slots__ if not getattr(self, name) > 0]
        if bad:
            raise ValueError(f"limits must be positive: {', '.join(bad)}")


@dataclass(frozen=True, slots=True)
class LimitDecision:
    """One policy's verdict; `reset_s`: when its next unit frees; `retry_after_s`: 0 if allowed."""

    allowed: bool
    policy: str
    limit: int
    remaining: int
    reset_s: float
    window_s: int
    retry_after_s: float


@dataclass(frozen=True, slots=True)
class Lease:
    """A held stream slot; `key` names the user's lease set in the backend."""

    key: str
    lease_id: str


class LimiterUnavailable(UpstreamUnavailable):
    """The limiter's backend is slow or down and the limiter fails closed: a retryable 503."""

    def __init__(self, message: str = "rate limiter is unavailable; try again shortly") -> None:
        super().__init__(message)


class Limiter(Protocol):
    """What the app needs from a limiter backend."""

    async def admit(self, principal: Principal) -> list[LimitDecision]:
        """Consume one request of the user and company windows unless any policy denies."""
        ...

    async def acquire_stream(self, principal: Principal) -> Lease | LimitDecision:
        """Hold one of the user's stream slots, or return the denial."""
        ...

    async def renew(self, lease: Lease) -> None:
        """Push the lease's expiry one lease TTL past now (heartbeats of long streams)."""
        ...

    async def release(self, lease: Lease) -> None:
        """Free the slot; idempotent and never raises for backend failures."""
        ...

    async def charge_tokens(self, principal: Principal, tokens: int) -> None:
        """Post-pay model tokens against the company budget."""
        ...

    async def close(self) -> None:
        """Release backend resources."""
        ...


def window_decision(
    policy: str,
    head: Sequence[float],
    *,
    used: int,
    now: float,
    limit: int,
    window_s: int,
    consume: bool = True,
) -> LimitDecision:
    """Decide against a sliding-window log: `used` live stamps, `head` the oldest of them in order.

    `head` must hold at least the first `used - limit + 1` stamps when denied (the one whose
    expiry frees a slot is the Retry-After), and the first one otherwise.
    """
    if used < limit:
        taken = 1 if consume else 0
        # An empty window's reset is the new stamp's expiry, or nothing if nothing was taken.
        reset = head[0] + window_s - now if used else (float(window_s) if consume else 0.0)
        return LimitDecision(True, policy, limit, limit - used - taken, reset, window_s, 0.0)
    retry = head[used - limit] + window_s - now
    return LimitDecision(False, policy, limit, 0, retry, window_s, retry)


def token_decision(
    policy: str,
    head: Sequence[tuple[float, int]],
    *,
    used: int,
    now: float,
    budget: int,
    window_s: int,
) -> LimitDecision:
    """Decide against a post-paid token log: allowed while `used` is under `budget`.

    `head` holds the oldest live (stamp, tokens) charges in order, enough of them for their
    expiry to bring `used` under `budget` when denied.
    """
    if used < budget:
        reset = head[0][0] + window_s - now if head else 0.0
        return LimitDecision(True, policy, budget, budget - used, reset, window_s, 0.0)
    left = used
    retry = float(window_s)  # only if `head` is short, which a consistent backend never sends
    for stamp, tokens in head:
        left -= tokens
        if left < budget:
            retry = stamp + window_s - now
            break
    return LimitDecision(False, policy, budget, 0, retry, window_s, retry)


def lease_decision(head: Sequence[float], *, held: int, now: float, limit: int) -> LimitDecision:
    """Decide a stream slot from `held` live leases whose earliest expiries are `head`, in order.

    When denied, Retry-After is when a slot frees at the latest if its holder stops renewing.
    """
    if held < limit:
        return LimitDecision(True, USER_STREAMS, limit, limit - held - 1, 0.0, 0, 0.0)
    retry = head[held - limit] - now
    return LimitDecision(False, USER_STREAMS, limit, 0, retry, 0, retry)


def admit_decisions(
    config: LimitsConfig,
    *,
    now: float,
    user: Sequence[float],
    user_used: int,
    company: Sequence[float],
    company_used: int,
    charges: Sequence[tuple[float, int]],
    tokens_used: int,
) -> list[LimitDecision]:
    """Decide an admission: both windows consume only when every policy allows."""
    admitted = (
        user_used < config.user_requests
        and company_used < config.company_requests
        and tokens_used < config.company_tokens
    )
    return [
        window_decision(
            USER_REQUESTS,
            user,
            used=user_used,
            now=now,
            limit=config.user_requests,
            window_s=config.user_window_s,
            consume=admitted,
        ),
        window_decision(
            COMPANY_REQUESTS,
            company,
            used=company_used,
            now=now,
            limit=config.company_requests,
            window_s=config.company_window_s,
            consume=admitted,
        ),
        token_decision(
            COMPANY_TOKENS,
            charges,
            used=tokens_used,
            now=now,
            budget=config.company_tokens,
            window_s=config.company_token_window_s,
        ),
    ]


def _seconds(value: float) -> int:
    # Round to the millisecond first: clock subtraction noise must not turn 60 into 61.
    return max(0, math.ceil(round(value, 3)))


def rate_limit_headers(decisions: Sequence[LimitDecision]) -> dict[str, str]:
    """Render `RateLimit` and `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers), and
    `Retry-After` when any decision denies."""
    if not decisions:
        return {}
    policies: list[str] = []
    states: list[str] = []
    for d in decisions:
        item = f'"{d.policy}";q={d.limit}'
        item += f";w={d.window_s}" if d.window_s > 0 else ';qu="concurrent-requests"'
        policies.append(item)
        states.append(f'"{d.policy}";r={max(0, d.remaining)};t={_seconds(d.reset_s)}')
    headers = {"RateLimit-Policy": ", ".join(policies), "RateLimit": ", ".join(states)}
    denied = [d.retry_after_s for d in decisions if not d.allowed]
    if denied:
        headers["Retry-After"] = str(max(1, _seconds(max(denied))))
    return headers


def check_tokens(tokens: int) -> None:
    """Refuse a charge that is not a non-negative integer."""
    # Callers pass numbers parsed from upstream JSON: guard the type at runtime too.
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:  # type: ignore[redundant-expr]
        raise ValueError(f"tokens must be a non-negative integer, got {tokens!r}")


def stream_key(principal: Principal) -> str:
    """The backend-neutral name of a user's lease set (ids are quoted: they come from claims)."""
    return f"{quote(principal.company_id, safe='')}/{quote(principal.user_id, safe='')}"


def _live(log: deque[float], now: float, window_s: int) -> deque[float]:
    while log and log[0] + window_s <= now:
        log.popleft()
    return log


class InProcessLimiter:
    """Exact limits for one process; memory is bounded by the quotas and swept when idle."""

    def __init__(
        self, config: LimitsConfig, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._config = config
        self._clock = clock
        self._users: dict[tuple[str, str], deque[float]] = {}
        self._companies: dict[str, deque[float]] = {}
        self._charges: dict[str, deque[tuple[float, int]]] = {}
        self._tokens_used: dict[str, int] = {}
        self._leases: dict[str, dict[str, float]] = {}
        self._swept_at = clock()

    def tracked_keys(self) -> int:
        """How many users, companies and lease sets hold state (for metrics and memory tests)."""
        return len(self._users) + len(self._companies) + len(self._charges) + len(self._leases)

    def _live_charges(self, company: str, now: float) -> tuple[deque[tuple[float, int]], int]:
        log = self._charges.setdefault(company, deque())
        used = self._tokens_used.get(company, 0)
        window = self._config.company_token_window_s
        while log and log[0][0] + window <= now:
            used -= log.popleft()[1]
        self._tokens_used[company] = used
        return log, used

    def _live_leases(self, key: str, now: float) -> dict[str, float]:
        leases = self._leases.setdefault(key, {})
        for lease_id in [i for i, expiry in leases.items() if expiry <= now]:
            del leases[lease_id]
        return leases

    async def admit(self, principal: Principal) -> list[LimitDecision]:
        """Consume one request of the user and company windows unless any policy denies."""
        cfg, now = self._config, self._clock()
        user_key = (principal.company_id, principal.user_id)
        user = _live(self._users.setdefault(user_key, deque()), now, cfg.user_window_s)
        company_log = self._companies.setdefault(principal.company_id, deque())
        company = _live(company_log, now, cfg.company_window_s)
        charges, tokens_used = self._live_charges(principal.company_id, now)
        decisions = admit_decisions(
            cfg,
            now=now,
            user=user,
            user_used=len(user),
            company=company,
            company_used=len(company),
            charges=charges,
            tokens_used=tokens_used,
        )
        if all(d.allowed for d in decisions):
            user.append(now)
            company.append(now)
        self._sweep(now)
        return decisions

    async def acquire_stream(self, principal: Principal) -> Lease | LimitDecision:
        """Hold one of the user's stream slots, or return the denial."""
        now, key = self._clock(), stream_key(principal)
        leases = self._live_leases(key, now)
        decision = lease_decision(
            sorted(leases.values()), held=len(leases), now=now, limit=self._config.user_streams
        )
        if not decision.allowed:
            return decision
        lease = Lease(key=key, lease_id=uuid.uuid4().hex)
        leases[lease.lease_id] = now + self._config.lease_ttl_s
        self._sweep(now)
        return lease

    async def renew(self, lease: Lease) -> None:
        """Extend a live lease; re-take a lapsed one only if a slot is free."""
        now = self._clock()
        leases = self._live_leases(lease.key, now)
        if lease.lease_id in leases or len(leases) < self._config.user_streams:
            leases[lease.lease_id] = now + self._config.lease_ttl_s

    async def release(self, lease: Lease) -> None:
        """Free the slot; releasing twice or after expiry is harmless."""
        leases = self._leases.get(lease.key)
        if leases is not None:
            leases.pop(lease.lease_id, None)

    async def charge_tokens(self, principal: Principal, tokens: int) -> None:
        """Post-pay model tokens against the company budget."""
        check_tokens(tokens)
        if tokens == 0:
            return
        now = self._clock()
        log, used = self._live_charges(principal.company_id, now)
        log.append((now, tokens))
        self._tokens_used[principal.company_id] = used + tokens

    async def close(self) -> None:
        """Forget all state."""
        for table in (self._users, self._companies, self._charges, self._tokens_used, self._leases):
            table.clear()

    def _sweep(self, now: float) -> None:
        # Idle keys would otherwise accumulate one entry per user ever seen; one pass per
        # shortest window keeps the cost amortised O(1) per request.
        cfg = self._config
        if now - self._swept_at < min(cfg.user_window_s, cfg.company_window_s, cfg.lease_ttl_s):
            return
        self._swept_at = now
        for user_key in [
            k for k, log in self._users.items() if not _live(log, now, cfg.user_window_s)
        ]:
            del self._users[user_key]
        for company in [
            k for k, log in self._companies.items() if not _live(log, now, cfg.company_window_s)
        ]:
            del self._companies[company]
        for company in [k for k in self._charges if not self._live_charges(k, now)[0]]:
            del self._charges[company]
            del self._tokens_used[company]
        for key in [k for k in self._leases if not self._live_leases(k, now)]:
            del self._leases[key]
