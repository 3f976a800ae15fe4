"""A server span per request to the agent service, continuing the caller's W3C trace
(`traceparent` from the gateway's `AgentClient`); the run and its steps are its children
(`runs.runner`, `graph.builder.traced`), the model calls theirs (`providers.openai.tracing`)."""

from __future__ import annotations

from typing import Final

from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts.tracing import extract_context

UNTRACED_PATHS: Final = frozenset({"/health", "/ready", "/metrics"})
"""Probes and scrapes: a trace each would drown the requests' traces."""


class TracingMiddleware:
    """Pure ASGI: the whole request, a streamed response included, under one server span."""

    def __init__(self, app: ASGIApp, tracer: Tracer) -> None:
        self.app = app
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNTRACED_PATHS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope["method"]
        with self.tracer.start_as_current_span(
            method,
            context=extract_context(headers),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method},
        ) as span:

            async def send_wrapper(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            try:
                await self.app(scope, receive, send_wrapper)
            finally:
                # The route's template, not the path (ids in paths would name every span apart).
                route = getattr(scope.get("route"), "path", None)
                if route is not None:
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
