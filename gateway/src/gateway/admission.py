"""Who may start a run: token verification, request limits and stream leases, as one sequence."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import structlog
from aiohttp import web

from gateway.app_state import LIMIT_HEADERS, LIMITER, METRICS, VERIFIER
from gateway.auth import Principal, bearer_token
from gateway.errors import RateLimited, Unauthorized
from gateway.metrics import GatewayMetrics
from gateway.rate_limit import (
    Lease,
    LimitDecision,
    Limiter,
    rate_limit_headers,
)

log = structlog.get_logger("gateway.admission")


async def verify_token(app: web.Application, token: str | None) -> Principal:
    """The principal of a bearer token; `Unauthorized` when it is missing or invalid,
    `UpstreamUnavailable` when there are no keys to check it with."""
    if not token:
        raise Unauthorized("A bearer token is required.")
    return await app[VERIFIER].verify(token)


async def authenticate(request: web.Request) -> Principal:
    """The principal of the request's `Authorization: Bearer` header."""
    return await verify_token(request.app, bearer_token(request.headers.get("Authorization")))


def _denied(metrics: GatewayMetrics, decisions: Sequence[LimitDecision]) -> RateLimited:
    denied = [d for d in decisions if not d.allowed]
    for decision in denied:
        metrics.limit_rejections.labels(decision.policy).inc()
    worst = max(denied, key=lambda d: d.retry_after_s)
    return RateLimited(
        f"Too many requests ({worst.policy}). Retry in {worst.retry_after_s:.0f} s.",
        headers=rate_limit_headers(decisions),
    )


async def admit(
    app: web.Application, principal: Principal, *, limiter: Limiter | None = None
) -> dict[str, str]:
    """Consume one request of the principal's limits (of `limiter`, default the chat limits);
    the RateLimit headers, or `RateLimited` (`LimiterUnavailable` when the backend is down)."""
    decisions = await (limiter or app[LIMITER]).admit(principal)
    if not all(d.allowed for d in decisions):
        raise _denied(app[METRICS], decisions)
    return rate_limit_headers(decisions)


async def stream_lease_taken(app: web.Application, principal: Principal) -> Lease:
    """Take one of the principal's concurrent-stream slots (the caller releases it)."""
    got = await app[LIMITER].acquire_stream(principal)
    if isinstance(got, LimitDecision):
        raise _denied(app[METRICS], [got])
    return got


async def admit_request(request: web.Request, principal: Principal) -> dict[str, str]:
    """`admit` the request of a chat route, on its headers alone (before its body is read: a
    refused or slow sender costs no more than that); its RateLimit headers are kept in
    `request[LIMIT_HEADERS]` for the response."""
    headers = await admit(request.app, principal)
    request[LIMIT_HEADERS] = headers
    return headers


@asynccontextmanager
async def stream_lease(app: web.Application, principal: Principal) -> AsyncIterator[Lease]:
    """Hold one of the principal's concurrent-stream slots; released on every ending."""
    limiter = app[LIMITER]
    got = await stream_lease_taken(app, principal)
    try:
        yield got
    finally:
        # Shielded: a cancelled handler (client gone) must still give the slot back.
        await _shielded(limiter.release(got))


async def charge_tokens(limiter: Limiter, principal: Principal, tokens: int) -> None:
    """Charge a finished run's tokens to the company budget, even if the handler is cancelled."""
    if tokens > 0:
        await _shielded(limiter.charge_tokens(principal, tokens))


async def _shielded(work: Coroutine[Any, Any, None]) -> None:
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        # Let the shielded work finish in the background; the caller is going away anyway.
        raise
    except Exception:
        log.warning("limiter_call_failed", exc_info=True)


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """The Retry-After of a refusal's headers, in seconds."""
    value = headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
