"""`create_app`: the gateway's aiohttp application, its resources, routes and shutdown."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable

import structlog
from aiohttp import WSCloseCode, web
from opentelemetry.sdk.trace import TracerProvider

from contracts.client import AgentClient
from contracts.tracing import NO_TRACER, provider_from_env, tracer_of
from gateway.app_state import (
    AGENT,
    CONVERSATION_LIMITER,
    LIMITER,
    METRICS,
    OPEN_STREAMS,
    READ_FALLBACK_LIMITER,
    RELAY,
    RUN_PRODUCERS,
    RUN_STORE,
    SETTINGS,
    TRACER,
    VERIFIER,
    OpenStreams,
    TokenVerifier,
)
from gateway.auth import JwtVerifier
from gateway.metrics import GatewayMetrics
from gateway.middleware import on_response_prepare, request_context
from gateway.rate_limit import InProcessLimiter, Limiter, LimitsConfig
from gateway.resume import cancel_runs, stop_local_run
from gateway.routes import agui, ai_sdk, complete, conversations, openai_chat, ops, page, sse, ws
from gateway.routes.api_docs import add_api_docs_routes
from gateway.routes.dev_auth import add_dev_auth_routes
from gateway.run_buffer import MemoryRunStore, RunStore
from gateway.runs import end_open_streams
from gateway.settings import GatewaySettings
from gateway.tracing import trace_request
from gateway.upstream import agent_client, upstream_session

log = structlog.get_logger("gateway.app")


def create_app(
    settings: GatewaySettings | None = None,
    *,
    agent_client: AgentClient | None = None,
    limiter: Limiter | None = None,
    verifier: TokenVerifier | None = None,
    run_store: RunStore | None = None,
    tracer_provider: TracerProvider | None = None,
) -> web.Application:
    """Build the gateway; resources given here are used (and not closed), others are created.

    Tracing: `tracer_provider` when given (tests: an in-memory exporter), else as the standard
    `OTEL_*` settings say (off unless they ask; `contracts.tracing`)."""
    settings = settings if settings is not None else GatewaySettings()
    owned = provider_from_env("gateway", os.environ) if tracer_provider is None else None
    tracer = tracer_of(tracer_provider or owned, "gateway")
    # tracing off: no span per request (a socket kept its no-op span's objects for its life)
    tracing = [trace_request] if tracer is not NO_TRACER else []
    app = web.Application(
        middlewares=[*tracing, request_context], client_max_size=settings.client_max_size
    )
    app[SETTINGS] = settings
    app[TRACER] = tracer
    if owned is not None:
        app.on_cleanup.append(lambda _: asyncio.to_thread(owned.shutdown))
    app[METRICS] = GatewayMetrics()
    app[OPEN_STREAMS] = OpenStreams()
    app[RELAY] = settings.relay_config()
    app.cleanup_ctx.append(_agent_ctx(agent_client))
    app.cleanup_ctx.append(_limiter_ctx(limiter))
    app.cleanup_ctx.append(_verifier_ctx(verifier))
    app.cleanup_ctx.append(_runs_ctx(run_store))
    app.on_response_prepare.append(on_response_prepare)
    app.on_shutdown.append(_on_shutdown)
    _add_routes(app, settings)
    return app


def _add_routes(app: web.Application, settings: GatewaySettings) -> None:
    router = app.router
    router.add_post("/api/chat", ai_sdk.chat_ai_sdk)
    router.add_get("/api/chat/{chat_id}/stream", ai_sdk.resume_stream)
    router.add_post("/api/chat/stream", sse.chat_stream)
    router.add_get("/api/chat/runs/{run_id}/stream", sse.resume_chat_stream)
    router.add_post("/api/chat/runs/{run_id}/stop", sse.stop_run_route)
    router.add_post("/api/chat/complete", complete.chat_complete)
    router.add_post("/api/agui", agui.run_agui)
    router.add_post("/v1/chat/completions", openai_chat.chat_completions)
    router.add_get("/v1/models", openai_chat.list_models)
    router.add_get("/api/conversations", conversations.list_conversations)
    router.add_get("/api/conversations/{conversation_id}", conversations.get_conversation)
    router.add_delete("/api/conversations/{conversation_id}", conversations.delete_conversation)
    router.add_get("/ws/chat", ws.chat_ws)
    # both spellings on both tiers: /health and /ready are what most tools probe
    for path in ("/health", "/healthz"):
        router.add_get(path, ops.healthz)
    for path in ("/ready", "/readyz"):
        router.add_get(path, ops.readyz)
    if settings.metrics_token is not None or settings.is_development:
        # Public gateways do not publish their internals to anyone: a token, or loopback dev.
        router.add_get("/metrics", ops.metrics)
    page.add_page_routes(app)
    if settings.dev_auth_enabled:
        add_dev_auth_routes(app)
    if settings.api_docs_enabled:
        add_api_docs_routes(app)


CleanupCtx = Callable[[web.Application], AsyncIterator[None]]


def _agent_ctx(given: AgentClient | None) -> CleanupCtx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if given is not None:
            app[AGENT] = given
            yield
            return
        session = upstream_session(app[SETTINGS])
        app[AGENT] = agent_client(app[SETTINGS], session)
        try:
            yield
        finally:
            await session.close()

    return ctx


def _limiter_ctx(given: Limiter | None) -> CleanupCtx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        # The conversation routes have their own windows (own keys), so a page refreshing its
        # list does not spend the user's chat requests.
        conversations = _new_limiter(
            settings, settings.conversation_limits_config(), f"{settings.redis_prefix}:conv"
        )
        app[CONVERSATION_LIMITER] = conversations
        owned = [conversations]
        if settings.redis_url:
            # Reads keep working through a Redis outage, under this replica's own limits.
            app[READ_FALLBACK_LIMITER] = InProcessLimiter(settings.conversation_limits_config())
            owned.append(app[READ_FALLBACK_LIMITER])
        if given is not None:
            app[LIMITER] = given
        else:
            app[LIMITER] = _new_limiter(settings, settings.limits_config(), settings.redis_prefix)
            owned.append(app[LIMITER])
        try:
            yield
        finally:
            for limiter in owned:
                await limiter.close()

    return ctx


def _new_limiter(settings: GatewaySettings, config: LimitsConfig, prefix: str) -> Limiter:
    if settings.redis_url:
        from gateway.redis_limits import RedisLimiter  # only replicas sharing limits need it

        return RedisLimiter(
            config,
            settings.redis_url,
            prefix=prefix,
            timeout_s=settings.redis_timeout_s,
            fail_open=settings.redis_fail_open,
        )
    return InProcessLimiter(config)


def _runs_ctx(given: RunStore | None) -> CleanupCtx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        app[RUN_PRODUCERS] = {}
        if given is not None:
            app[RUN_STORE] = given
            yield
            return
        config = settings.resume_config()
        store: RunStore
        if settings.redis_url:
            from gateway.redis_runs import RedisRunStore  # only replicas sharing runs need it

            store = RedisRunStore(
                config,
                settings.redis_url,
                prefix=settings.redis_prefix,
                timeout_s=settings.redis_timeout_s,
                on_stop=lambda run_id: stop_local_run(app, run_id),
            )
        else:
            store = MemoryRunStore(config)
        app[RUN_STORE] = store
        try:
            yield
        finally:
            await cancel_runs(app)
            await store.close()

    return ctx


def _verifier_ctx(given: TokenVerifier | None) -> CleanupCtx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if given is not None:
            app[VERIFIER] = given
            yield
            return
        verifier = JwtVerifier(app[SETTINGS].jwt_config())
        await verifier.start()
        app[VERIFIER] = verifier
        try:
            yield
        finally:
            await verifier.close()

    return ctx


async def _on_shutdown(app: web.Application) -> None:
    """SIGTERM: stop new runs, end open ones with SHUTTING_DOWN, close sockets with 1001."""
    await end_open_streams(app)
    await cancel_runs(app)
    sockets = list(app[OPEN_STREAMS].sockets)
    if sockets:
        log.info("closing_websockets", count=len(sockets))
        timeout = app[SETTINGS].write_timeout_s
        await asyncio.gather(
            *(_close_socket(ws, timeout) for ws in sockets), return_exceptions=True
        )


async def _close_socket(ws: web.WebSocketResponse, deadline_s: float) -> None:
    try:
        async with asyncio.timeout(deadline_s):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")
    except (TimeoutError, ConnectionError):
        pass
