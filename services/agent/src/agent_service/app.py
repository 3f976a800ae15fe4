"""`create_app`: the agent service's Starlette application."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypedDict, TypeVar, cast

import structlog
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Tracer
from pydantic import TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from agent_service.api_docs import DOCS_ROUTES
from agent_service.deps import Deps, open_deps
from agent_service.errors import (
    STORE_DOWN,
    STORE_ERRORS,
    AgentError,
    Forbidden,
    NotFound,
    StoreUnavailable,
    Unauthorized,
)
from agent_service.graph.builder import AgentGraph, build_graph
from agent_service.graph.state import RunContext
from agent_service.http_io import (
    REQUEST_ID_HEADER,
    RequestContextMiddleware,
    handle_error,
    read_json_model,
    request_id_of,
)
from agent_service.internal_auth import (
    InternalIdentity,
    SeenTokens,
    bearer_token,
    verify_internal_token,
)
from agent_service.metrics import AgentMetrics
from agent_service.openapi import openapi_document
from agent_service.providers.base import TenantContext
from agent_service.runs.registry import InProcessActiveRuns, RunRegistry, thread_key
from agent_service.runs.runner import RunLimits, Runner
from agent_service.runs.sse import HEARTBEAT
from agent_service.settings import AgentSettings
from agent_service.sse_response import EventStreamResponse
from agent_service.tracing import TracingMiddleware
from contracts.agent_api import (
    ChatRequest,
    ConversationHistory,
    ConversationList,
    HistoryMessage,
    Identifier,
    Source,
    ToolEndEvent,
)
from contracts.heap import freeze_startup_heap
from contracts.tracing import NO_TRACER, capture_content, provider_from_env, tracer_of

log = structlog.get_logger("agent_service.app")
T = TypeVar("T")

SSE_HEADERS = {
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",
    "Connection": "keep-alive",
}


class State(TypedDict):
    settings: AgentSettings
    deps: Deps
    graph: AgentGraph
    runner: Runner
    active: RunRegistry
    metrics: AgentMetrics
    issuers: dict[str, str]
    seen_tokens: SeenTokens


def _state(request: Request) -> State:
    return cast(State, request.scope["state"])


def authenticate(request: Request) -> InternalIdentity:
    """Verify the internal token; binds the request's ids into the log context."""
    st = _state(request)
    s = st["settings"]
    identity = verify_internal_token(
        bearer_token(request.headers.get("authorization")),
        st["issuers"],
        leeway_s=s.internal_token_leeway_s,
        max_bytes=s.internal_token_max_bytes,
        method=request.method,
        path=request.url.path,
    )
    if not identity.bound and s.internal_require_bound_tokens:
        raise Unauthorized("the token is not bound to a request (htm, htu)")
    if not st["seen_tokens"].first_use(identity, time.time(), s.internal_token_leeway_s):
        raise Unauthorized("token was already used")
    structlog.contextvars.bind_contextvars(
        request_id=request_id_of(request), company_id=identity.company_id, user_id=identity.user_id
    )
    return identity


async def _tenant_for_chat(request: Request) -> tuple[State, TenantContext, str]:
    st = _state(request)
    identity = authenticate(request)
    body = await read_json_model(request, ChatRequest, st["settings"].max_body_bytes)
    conv = body.conversation
    if conv.user_id != identity.user_id or conv.company_id != identity.company_id:
        raise Forbidden("the conversation context does not match the caller's identity")
    structlog.contextvars.bind_contextvars(conversation_id=conv.id)
    return (
        st,
        TenantContext(company_id=conv.company_id, user_id=conv.user_id, conversation_id=conv.id),
        body.input.message,
    )


async def _record(st: State, tenant: TenantContext, message: str) -> None:
    """The question into memory and counted (`Runner.record_question`)."""
    await st["runner"].record_question(tenant, message, st["deps"].conversations)


async def chat_stream(request: Request) -> Response:
    """POST /internal/chat/stream: the run as SSE semantic events."""
    st, tenant, message = await _tenant_for_chat(request)
    key = thread_key(tenant)
    await st["active"].acquire(key)
    try:
        await _record(st, tenant, message)
    except BaseException:
        await st["active"].release(key)
        raise
    body = st["runner"].sse_body(tenant, message, on_done=lambda: st["active"].release(key))
    headers = {**SSE_HEADERS, REQUEST_ID_HEADER: request_id_of(request)}
    settings = st["settings"]
    return EventStreamResponse(
        body,
        headers,
        heartbeat=HEARTBEAT,
        heartbeat_s=settings.heartbeat_s,
        stall_s=settings.stall_timeout_s,
    )


STREAM_PATH = "/internal/chat/stream"


class AgentApp(Starlette):
    """The Starlette app, with `POST /internal/chat/stream` served without its layers.

    A stream's every write passed through three ASGI `send` wrappers (Starlette's error and
    exception middleware, the request-context middleware) and each request through the router's
    matching of every route. The streaming route does what those layers did itself
    (`_serve_stream`): a fresh log context, errors rendered by the same handlers, the request
    counted by route and status. Other routes, and every route when tracing is on (its
    middleware opens the request's span), go through the whole stack."""

    def __init__(self, *, direct_stream: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._direct_stream = direct_stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self._direct_stream
            and scope["type"] == "http"
            and scope["path"] == STREAM_PATH
            and scope["method"] == "POST"
            and not scope.get("root_path")
        ):
            scope["app"] = self
            await _serve_stream(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


async def _serve_stream(scope: Scope, receive: Receive, send: Send) -> None:
    structlog.contextvars.clear_contextvars()
    request = Request(scope, receive)
    response: Response | None = None
    try:
        try:
            response = await chat_stream(request)
        except Exception as exc:
            response = await render_error(request, exc)
        try:
            await response(scope, receive, send)
        except Exception as exc:
            # started: nothing to render, the connection is cut; logged as Starlette's
            # error middleware did, with the request's log context
            log.error("unhandled_error", exc_info=exc, path=STREAM_PATH)
            raise
    finally:
        status = 500 if response is None else response.status_code
        _state(request)["metrics"].requests.labels("chat_stream", str(status)).inc()


async def render_error(request: Request, exc: Exception) -> Response:
    """The error response Starlette gives `exc`: the handler of its nearest class in
    `EXCEPTION_HANDLERS` (the table `create_app` hands Starlette)."""
    for cls in type(exc).__mro__:
        handler = EXCEPTION_HANDLERS.get(cls)
        if handler is not None:
            return await handler(request, exc)
    raise AssertionError("EXCEPTION_HANDLERS covers Exception")


async def chat(request: Request) -> Response:
    """POST /internal/chat: the run to completion, as one JSON answer."""
    st, tenant, message = await _tenant_for_chat(request)
    key = thread_key(tenant)
    await st["active"].acquire(key)
    try:
        await _record(st, tenant, message)
        response = await _unless_disconnected(request, st["runner"].collect(tenant, message))
    finally:
        await st["active"].release(key)
    if response is None:
        return Response(status_code=499)  # nobody is listening any more
    return JSONResponse(
        response.model_dump(mode="json"), headers={REQUEST_ID_HEADER: request_id_of(request)}
    )


async def _unless_disconnected(request: Request, work: Awaitable[T]) -> T | None:
    """Await `work`, cancelling it (and so the run and its model call) if the caller leaves."""
    task = asyncio.ensure_future(work)

    async def caller_left() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(caller_left())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        raise
    finally:
        watcher.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    _state(request)["metrics"].runs_cancelled.inc()
    return None


async def list_conversations(request: Request) -> Response:
    st = _state(request)
    who = authenticate(request)
    items = await st["deps"].conversations.list(who.company_id, who.user_id)
    return JSONResponse(ConversationList(conversations=items).model_dump(mode="json"))


_IDENTIFIER: TypeAdapter[str] = TypeAdapter(Identifier)


def _conversation_id(request: Request) -> str:
    """The path's conversation id; a malformed one cannot exist, so it is a 404 like any other."""
    try:
        return _IDENTIFIER.validate_python(request.path_params["conversation_id"])
    except ValidationError:
        raise NotFound("no such conversation") from None


async def get_conversation(request: Request) -> Response:
    st = _state(request)
    who = authenticate(request)
    cid = _conversation_id(request)
    summary = await st["deps"].conversations.get(who.company_id, who.user_id, cid)
    if summary is None:
        raise NotFound("no such conversation")
    tenant = TenantContext(company_id=who.company_id, user_id=who.user_id, conversation_id=cid)
    snapshot = await st["graph"].aget_state({"configurable": {"thread_id": thread_key(tenant)}})
    messages = [
        HistoryMessage(
            role=t["role"],
            content=t["content"],
            route=t.get("route"),
            sql=t.get("sql"),
            row_count=t.get("row_count"),
            sources=[Source(**s) for s in t["sources"]] if t.get("sources") else None,
            tools=[ToolEndEvent.model_validate(e) for e in t["tools"]] if t.get("tools") else None,
            created_at=t.get("at"),
            stopped=t.get("stopped"),
        )
        for t in (snapshot.values or {}).get("turns", [])
    ]
    history = ConversationHistory(id=cid, title=summary.title, messages=messages)
    return JSONResponse(history.model_dump(mode="json", exclude_none=True))


async def delete_conversation(request: Request) -> Response:
    st = _state(request)
    who = authenticate(request)
    cid = _conversation_id(request)
    tenant = TenantContext(company_id=who.company_id, user_id=who.user_id, conversation_id=cid)
    key = thread_key(tenant)
    await st["active"].acquire(key)  # never erase a conversation under a running reply
    try:
        if await st["deps"].conversations.get(who.company_id, who.user_id, cid) is None:
            raise NotFound("no such conversation")
        # memory first: if erasing it fails, the conversation is still listed and can be
        # deleted again, instead of vanishing from the list with its history left behind
        await st["deps"].checkpointer.adelete_thread(key)
        await st["deps"].conversations.delete(who.company_id, who.user_id, cid)
    finally:
        await st["active"].release(key)
    return Response(status_code=204)


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("store_unavailable", error=repr(exc)[:300], path=request.url.path)
    return await handle_error(request, StoreUnavailable(STORE_DOWN))


ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]

# one renderer; Starlette routes exceptions by class, so each root is named
EXCEPTION_HANDLERS: dict[type[Exception], ErrorHandler] = {
    AgentError: handle_error,
    # a store call outside `borrow` (memory through LangGraph's saver) that found PostgreSQL
    # down: 503 UPSTREAM_UNAVAILABLE, retryable
    **dict.fromkeys(STORE_ERRORS, _store_unavailable),
    HTTPException: handle_error,
    Exception: handle_error,
}


async def health(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> Response:
    """Ready only while the conversation store takes a write (a cheap probe, bounded in time)."""
    st = _state(request)
    writable = await st["deps"].conversations.writable(st["settings"].ready_timeout_s)
    return JSONResponse(
        {
            "status": "ready" if writable else "not_ready",
            "store": "writable" if writable else "not_writable",
            "provider": st["deps"].provider.name,
            "active_runs": len(st["active"]),
        },
        status_code=200 if writable else 503,
    )


async def metrics(request: Request) -> Response:
    return Response(
        _state(request)["metrics"].render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )


async def openapi(_: Request) -> Response:
    return JSONResponse(openapi_document())


ROUTES = [
    Route(STREAM_PATH, chat_stream, methods=["POST"]),  # AgentApp serves it directly
    Route("/internal/chat", chat, methods=["POST"]),
    Route("/internal/conversations", list_conversations, methods=["GET"]),
    Route("/internal/conversations/{conversation_id}", get_conversation, methods=["GET"]),
    Route("/internal/conversations/{conversation_id}", delete_conversation, methods=["DELETE"]),
    Route("/health", health, methods=["GET"]),
    Route("/ready", ready, methods=["GET"]),
    Route("/healthz", health, methods=["GET"]),  # the gateway's spelling, so one probe fits both
    Route("/readyz", ready, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
]


def create_app(
    settings: AgentSettings | None = None,
    *,
    deps: Deps | None = None,
    tracer_provider: TracerProvider | None = None,
    freeze_heap: bool = False,
) -> Starlette:
    """Build the app; resources open in the lifespan (`deps` when given, else from settings).

    Tracing: `tracer_provider` when given (tests: an in-memory exporter), else as the standard
    `OTEL_*` settings say (off unless they ask; `contracts.tracing`). `freeze_heap`: once started,
    keep what start-up built out of the garbage collector's full passes (the serving process;
    `contracts.heap`)."""
    settings = settings or AgentSettings()
    owned = provider_from_env("agent-service", os.environ) if tracer_provider is None else None
    tracer = tracer_of(tracer_provider or owned, "agent_service")

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[State]:
        metrics = AgentMetrics()
        async with _deps_or_default(settings, deps, tracer) as d, _shutting_down(owned):
            graph = build_graph(d.checkpointer)

            def make_context(tenant: TenantContext) -> RunContext:
                return RunContext(
                    tenant=tenant,
                    provider=d.provider,
                    sql=d.sql,
                    documents=d.documents,
                    schema=d.schema,
                    max_sql_attempts=settings.sql_max_attempts,
                    top_k=settings.rag_top_k,
                    history_turns=settings.history_turns,
                    table_max_rows=settings.sql_event_max_rows,
                    table_max_bytes=settings.sql_event_max_bytes,
                    tracer=tracer,
                )

            runner = Runner(
                graph,
                make_context,
                RunLimits(
                    run_timeout_s=settings.run_timeout_s,
                    heartbeat_s=settings.heartbeat_s,
                    stall_timeout_s=settings.stall_timeout_s,
                    buffer_events=settings.stream_buffer_events,
                ),
                metrics,
                capture_content=capture_content(os.environ),
            )
            if freeze_heap:
                log.info("startup_heap_frozen", objects=freeze_startup_heap())
            log.info(
                "agent_service_ready", provider=d.provider.name, data_dir=str(settings.data_dir)
            )
            yield State(
                settings=settings,
                deps=d,
                graph=graph,
                runner=runner,
                active=d.active_runs
                if d.active_runs is not None
                else InProcessActiveRuns(wait_s=settings.busy_wait_s),
                metrics=metrics,
                issuers={k: v.get_secret_value() for k, v in settings.internal_issuers.items()},
                seen_tokens=SeenTokens(),
            )

    return AgentApp(
        direct_stream=tracer is NO_TRACER,
        routes=[*ROUTES, *(DOCS_ROUTES if settings.api_docs_enabled else [])],
        lifespan=lifespan,
        exception_handlers=dict(EXCEPTION_HANDLERS),
        middleware=[
            # tracing off: no span to open, and one send wrapper less on every streamed write
            *([Middleware(TracingMiddleware, tracer=tracer)] if tracer is not NO_TRACER else []),
            Middleware(RequestContextMiddleware),
        ],
    )


@asynccontextmanager
async def _deps_or_default(
    settings: AgentSettings, deps: Deps | None, tracer: Tracer
) -> AsyncIterator[Deps]:
    if deps is not None:
        yield deps
        return
    async with open_deps(settings, tracer) as opened:
        yield opened


@asynccontextmanager
async def _shutting_down(provider: TracerProvider | None) -> AsyncIterator[None]:
    """Flush and stop a tracer provider this app made, at its shutdown."""
    try:
        yield
    finally:
        if provider is not None:
            await asyncio.to_thread(provider.shutdown)
