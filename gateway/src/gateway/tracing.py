"""The gateway's spans: one server span per HTTP request (a WebSocket's turns are children of
its upgrade's span), the root of the trace the agent and the model continue (`AgentClient`
sends its `traceparent`). A public client's own `traceparent` is not trusted: every trace
starts here."""

from __future__ import annotations

from typing import Final

from aiohttp import web
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from contracts.tracing import CONVERSATION_ATTR, TENANT_ATTR, USER_ATTR
from gateway.app_state import REQUEST_ID, TRACER
from gateway.auth import Principal
from gateway.middleware import Handler

UNTRACED_PATHS: Final = frozenset({"/health", "/healthz", "/ready", "/readyz", "/metrics"})
"""Probes and scrapes: a trace each would drown the requests' traces."""


@web.middleware
async def trace_request(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The request (a stream or a socket included) under one server span."""
    if request.path in UNTRACED_PATHS:
        return await handler(request)
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    with request.app[TRACER].start_as_current_span(
        f"{request.method} {route}",
        kind=SpanKind.SERVER,
        attributes={"http.request.method": request.method, "http.route": route},
    ) as span:
        response = await handler(request)
        span.set_attribute("http.response.status_code", response.status)
        if request.get(REQUEST_ID):
            span.set_attribute("app.request_id", request[REQUEST_ID])
        if response.status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        return response


def mark_run(principal: Principal, conversation_id: str) -> None:
    """Name the tenant and conversation on the current span (never the message)."""
    trace.get_current_span().set_attributes(
        {
            TENANT_ATTR: principal.company_id,
            USER_ATTR: principal.user_id,
            CONVERSATION_ATTR: conversation_id,
        }
    )
