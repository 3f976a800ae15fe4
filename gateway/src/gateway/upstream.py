"""The agent service as the gateway sees it: one pooled session, one client, error mapping."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp

from contracts.client import AgentAPIError, AgentClient, hs256_token_factory
from contracts.errors import ErrorCode
from contracts.internal_token import mint_internal_token
from gateway.errors import GatewayError
from gateway.settings import GatewaySettings


def token_factory(settings: GatewaySettings) -> Callable[[str, str, str | None], str]:
    """Mint the short-lived internal token of one upstream call (identity from verified claims)."""
    key = settings.internal_key.get_secret_value()
    if settings.internal_algorithm == "HS256":
        return hs256_token_factory(settings.internal_issuer, key, settings.internal_token_ttl_s)
    algorithm = settings.internal_algorithm

    def factory(user_id: str, company_id: str, request_id: str | None) -> str:
        return mint_internal_token(
            issuer=settings.internal_issuer,
            key=key,
            user_id=user_id,
            company_id=company_id,
            request_id=request_id,
            ttl_s=settings.internal_token_ttl_s,
            algorithm=algorithm,
        )

    return factory


def agent_client(settings: GatewaySettings, session: aiohttp.ClientSession) -> AgentClient:
    """The agent client over the app's pooled session: one replica, or all of them in turn."""
    options: dict[str, Any] = {
        "token_factory": token_factory(settings),
        "session": session,
        "connect_timeout_s": settings.upstream_connect_timeout_s,
        "read_timeout_s": settings.upstream_sock_read_s,
        "chat_timeout_s": settings.upstream_request_timeout_s,
        "max_event_bytes": settings.upstream_max_event_bytes,
        "health_path": "/ready",
        "max_connections": settings.upstream_max_connections,
    }
    urls = settings.agent_base_urls
    if len(urls) == 1:
        return AgentClient(urls[0], **options)
    return ReplicatedAgentClient(urls, **options)


class ReplicatedAgentClient(AgentClient):
    """An `AgentClient` over several agent replicas: round-robin per call, failover on refusal.

    Every request (a stream's opening included) goes to the next replica in turn. When a replica
    cannot be connected to, the same request goes to the next one; a request that reached a
    replica is never sent again, so a stream that started is never replayed elsewhere.
    """

    def __init__(self, base_urls: Sequence[str], **options: Any) -> None:
        if not base_urls:
            raise ValueError("at least one agent URL is required")
        super().__init__(base_urls[0], **options)
        self.replicas = tuple(AgentClient(url, **options) for url in base_urls)
        self._turn = itertools.count()

    async def _send(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes | None,
        limits: aiohttp.ClientTimeout,
        request_id: str,
    ) -> aiohttp.ClientResponse:
        start = next(self._turn)
        count = len(self.replicas)
        for attempt in range(count):
            replica = self.replicas[(start + attempt) % count]
            try:
                return await replica._send(method, path, headers, body, limits, request_id)
            except AgentAPIError as exc:
                if attempt == count - 1 or not _never_connected(exc):
                    raise
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def health(self) -> bool:
        """True when at least one replica is ready (the gateway can still serve every call)."""
        answers = await asyncio.gather(*(replica.health() for replica in self.replicas))
        return any(answers)

    async def aclose(self) -> None:
        """Close the replicas' clients (a session passed in stays open)."""
        for replica in self.replicas:
            await replica.aclose()
        await super().aclose()


def _never_connected(exc: AgentAPIError) -> bool:
    """Whether the request failed before reaching the replica (refused, unresolvable, no connect
    within the connect timeout), so sending it to another replica cannot run it twice."""
    cause = exc.__cause__
    return isinstance(cause, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)


def upstream_session(settings: GatewaySettings) -> aiohttp.ClientSession:
    """One pooled session toward the agent, sized for a replica's streams (call in the loop)."""
    connector = aiohttp.TCPConnector(limit=settings.upstream_max_connections, limit_per_host=0)
    # No total timeout: streams are long; the client sets connect and read limits per call.
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=settings.upstream_connect_timeout_s),
    )


def gateway_error(exc: AgentAPIError) -> GatewayError:
    """The gateway's refusal for an agent refusal: 4xx pass through, failures become 502/503."""
    if exc.status in (401, 403):
        # The user's token was fine (we verified it); the agent refused *our* internal token:
        # a misconfigured key or clock, not something the user can fix.
        return GatewayError(
            "The assistant service refused the gateway's credentials.",
            code=ErrorCode.UPSTREAM_PROTOCOL_ERROR,
            status=502,
            retryable=False,
        )
    if 400 <= exc.status < 500:
        status = exc.status
    elif exc.code == ErrorCode.UPSTREAM_UNAVAILABLE or exc.status == 503:
        status = 503
    else:
        status = 502
    headers = {"Retry-After": f"{exc.retry_after:.0f}"} if exc.retry_after is not None else None
    return GatewayError(
        exc.message,
        code=exc.code,
        status=status,
        retryable=exc.retryable,
        headers=headers,
        details=exc.details,
    )
