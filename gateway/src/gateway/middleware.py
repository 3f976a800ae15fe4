"""Request ids, CORS, access metrics and the one place errors become JSON bodies."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Final

import structlog
from aiohttp import web

from contracts.errors import ErrorCode
from gateway.app_state import METRICS, OPEN_STREAMS, REQUEST_ID, SETTINGS
from gateway.errors import Forbidden, GatewayError, ShuttingDown

log = structlog.get_logger("gateway.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9._-]{8,128}")
EXPOSED_HEADERS: Final = (
    "X-Request-ID, RateLimit, RateLimit-Policy, Retry-After, x-vercel-ai-ui-message-stream, "
    "X-Conversation-ID"
)
ALLOWED_HEADERS: Final = (
    "Authorization, Content-Type, X-Request-ID, Last-Event-ID, X-Conversation-ID"
)
_HTTP_CODES: Final[dict[int, ErrorCode]] = {
    400: ErrorCode.INVALID_REQUEST,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    429: ErrorCode.RATE_LIMITED,
}


def request_id_of(header: str | None) -> str:
    """The client's request id if well formed, else a fresh one."""
    if header is not None and REQUEST_ID_PATTERN.fullmatch(header):
        return header
    return uuid.uuid4().hex


def error_response(error: GatewayError, request_id: str | None) -> web.Response:
    """The JSON response of a refused request."""
    response = web.Response(
        status=error.status,
        text=error.body(request_id).model_dump_json(exclude_none=True),
        content_type="application/json",
        headers=error.headers,
    )
    return response


async def _send_and_close(request: web.Request, response: web.StreamResponse) -> None:
    """Send `response`, then close the connection: the rest of a slow body may still be on its
    way, and aiohttp would otherwise linger reading it for seconds."""
    try:
        await response.prepare(request)
        await response.write_eof()
    except ConnectionError:
        pass
    if request.transport is not None:
        request.transport.close()  # flushes what is buffered, then closes


async def _closing_unread(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """A refusal sent before (or while) its body was read is sent, then the connection closed
    rather than lingering to read the rest (routes rendering their own error shape included)."""
    if (
        response.status >= 400
        and not response.prepared
        and request.body_exists
        and not request.content.is_eof()
    ):
        await _send_and_close(request, response)
    return response


def _route_name(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give the request an id, bind it into logs, render errors, count the response."""
    request_id = request_id_of(request.headers.get("X-Request-ID"))
    request[REQUEST_ID] = request_id
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    status = 500
    started = time.monotonic()
    try:
        response = await _respond(request, handler)
        status = response.status
        return await _closing_unread(request, response)
    except GatewayError as error:
        # The one place a refusal becomes a response.
        status = error.status
        return await _closing_unread(request, error_response(error, request_id))
    except web.HTTPException as exc:  # a redirect (refusals are GatewayErrors by now)
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = 499  # the client went away (nginx's convention)
        raise
    finally:
        route = _route_name(request)
        request.app[METRICS].requests.labels(route, str(status)).inc()
        log.info(
            "http_request",
            method=request.method,
            route=route,
            status=status,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )


async def _respond(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The handler's response; every refusal or failure as a `GatewayError`."""
    try:
        refuse_foreign_host(request)
        refuse_while_draining(request)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            return _preflight(request)
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        raise _http_error(exc) from exc
    except GatewayError:
        raise
    except Exception as exc:
        log.exception("unhandled_error", path=request.path)
        raise GatewayError("Something went wrong on our side.") from exc


def host_name(host: str) -> str:
    """The name of a `Host` header without its port (`[::1]:8000` → `[::1]`), lower-cased."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end != -1 else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def refuse_foreign_host(request: web.Request) -> None:
    """In development, refuse a `Host` off the allow-list: a DNS-rebinding page resolves its own
    name to 127.0.0.1 and would otherwise talk to (and mint tokens from) a developer's gateway."""
    settings = request.app[SETTINGS]
    if not settings.is_development:
        return
    if host_name(request.headers.get("Host", "")) not in settings.dev_allowed_hosts:
        raise Forbidden("This host name is not allowed (GATEWAY_DEV_ALLOWED_HOSTS).")


OPS_PATHS: Final = frozenset({"/health", "/healthz", "/ready", "/readyz", "/metrics"})


def refuse_while_draining(request: web.Request) -> None:
    """After SIGTERM with a drain period: every new request but the operational ones gets a
    retryable 503, so clients retry on another replica while this one's streams finish."""
    if request.app[OPEN_STREAMS].draining and request.path not in OPS_PATHS:
        raise ShuttingDown("The server is restarting. Please retry.", retryable=True)


def _http_error(exc: web.HTTPException) -> GatewayError:
    """aiohttp's own refusals (no route, wrong method, body too large) as gateway errors."""
    message = exc.reason if exc.status != 413 else "The request body is too large."
    allow = {"Allow": exc.headers["Allow"]} if exc.status == 405 and "Allow" in exc.headers else {}
    code = _HTTP_CODES.get(exc.status, ErrorCode.INTERNAL)
    return GatewayError(message, code=code, status=exc.status, headers=allow)


def _allowed_origin(request: web.Request) -> str | None:
    origin = request.headers.get("Origin")
    if origin is not None and origin in request.app[SETTINGS].cors_origins:
        return origin
    return None


def _preflight(request: web.Request) -> web.Response:
    response = web.Response(status=204)
    origin = _allowed_origin(request)
    if origin is not None:
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response.headers["Access-Control-Max-Age"] = "600"
    return response


async def on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Headers every response carries, streams and WebSocket handshakes included."""
    request_id = request.get(REQUEST_ID)
    if request_id is not None:
        response.headers["X-Request-ID"] = request_id
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    origin = _allowed_origin(request)
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        if request.app[SETTINGS].cors_allow_credentials:
            response.headers["Access-Control-Allow-Credentials"] = "true"
    response.headers.add("Vary", "Origin")
