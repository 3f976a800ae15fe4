"""Operational endpoints: liveness, readiness (the agent is reachable) and Prometheus metrics."""

from __future__ import annotations

import hmac

from aiohttp import web

from gateway.app_state import AGENT, METRICS, OPEN_STREAMS, SETTINGS
from gateway.auth import bearer_token
from gateway.errors import Unauthorized


async def healthz(request: web.Request) -> web.Response:
    """`GET /health` (or `/healthz`): the process serves requests."""
    del request
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """`GET /ready` (or `/readyz`): 200 when the agent is ready and we are not closing, else 503."""
    streams = request.app[OPEN_STREAMS]
    if streams.closing or streams.draining:
        return web.json_response({"status": "shutting_down"}, status=503)
    if not await request.app[AGENT].health():
        return web.json_response({"status": "upstream_unavailable"}, status=503)
    return web.json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    """`GET /metrics`: this app's metrics in the Prometheus text format, for the holder of
    `GATEWAY_METRICS_TOKEN` (routed without one in development only)."""
    expected = request.app[SETTINGS].metrics_token
    if expected is not None:
        given = bearer_token(request.headers.get("Authorization")) or ""
        if not hmac.compare_digest(given.encode(), expected.get_secret_value().encode()):
            raise Unauthorized("/metrics needs the metrics token.")
    body, content_type = request.app[METRICS].exposition()
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    return response
