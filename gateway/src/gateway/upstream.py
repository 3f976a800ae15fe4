"""The agent service as the gateway sees it: one pooled session, one client, error mapping."""

from __future__ import annotations

import aiohttp

from contracts.client import AgentAPIError, AgentClient, TokenFactory, hs256_token_factory
from contracts.errors import ErrorCode
from contracts.internal_token import RequestBinding, mint_internal_token
from gateway.errors import GatewayError
from gateway.settings import GatewaySettings


def token_factory(settings: GatewaySettings) -> TokenFactory:
    """Mint the short-lived internal token of one upstream call (identity from verified claims)."""
    key = settings.internal_key.get_secret_value()
    if settings.internal_algorithm == "HS256":
        return hs256_token_factory(settings.internal_issuer, key, settings.internal_token_ttl_s)
    algorithm = settings.internal_algorithm

    def factory(
        user_id: str,
        company_id: str,
        request_id: str | None,
        /,
        *,
        binding: RequestBinding | None = None,
    ) -> str:
        return mint_internal_token(
            issuer=settings.internal_issuer,
            key=key,
            user_id=user_id,
            company_id=company_id,
            request_id=request_id,
            ttl_s=settings.internal_token_ttl_s,
            algorithm=algorithm,
            binding=binding,
        )

    return factory


def agent_client(settings: GatewaySettings, session: aiohttp.ClientSession) -> AgentClient:
    """The agent client over the app's pooled session: one replica, or all of them in turn
    (a request no replica could be connected to goes on to the next)."""
    return AgentClient(
        settings.agent_base_urls,
        failover=True,
        token_factory=token_factory(settings),
        session=session,
        connect_timeout_s=settings.upstream_connect_timeout_s,
        read_timeout_s=settings.upstream_sock_read_s,
        chat_timeout_s=settings.upstream_request_timeout_s,
        max_event_bytes=settings.upstream_max_event_bytes,
        health_path="/ready",
        max_connections=settings.upstream_max_connections,
    )


def upstream_session(settings: GatewaySettings) -> aiohttp.ClientSession:
    """One pooled session toward the agent, sized for a replica's streams (call in the loop)."""
    # idle connections are dropped after 15 s, before the agent closes them (AGENT_KEEPALIVE_S,
    # 75 s): a request never goes out on a connection the agent is closing
    connector = aiohttp.TCPConnector(
        limit=settings.upstream_max_connections, limit_per_host=0, keepalive_timeout=15.0
    )
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
