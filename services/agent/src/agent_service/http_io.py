"""Parsing requests and rendering errors at the HTTP boundary."""

from __future__ import annotations

import re
import uuid
from typing import TypeVar

import structlog
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent_service.errors import (
    AgentError,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)

log = structlog.get_logger("agent_service.http")

ModelT = TypeVar("ModelT", bound=BaseModel)
REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def request_id_of(request: Request) -> str:
    """The caller's request id if well-formed, else a new one (stored on the request)."""
    existing = getattr(request.state, "request_id", None)
    if isinstance(existing, str):
        return existing
    candidate = request.headers.get(REQUEST_ID_HEADER, "")
    rid = candidate if _REQUEST_ID.match(candidate) else uuid.uuid4().hex
    request.state.request_id = rid
    return rid


async def read_json_model(request: Request, model: type[ModelT], max_bytes: int) -> ModelT:
    """Read and validate a JSON body within `max_bytes`; every failure is a 4xx with details."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaType("send the body as application/json")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
        raise PayloadTooLarge(f"the body exceeds {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"the body exceeds {max_bytes} bytes")
        chunks.append(chunk)
    try:
        return model.model_validate_json(b"".join(chunks))
    except ValidationError as exc:
        details = [
            {"field": ".".join(str(p) for p in err["loc"]) or "body", "problem": _problem(err)}
            for err in exc.errors(include_url=False)
        ]
        raise InvalidRequest("the request body is invalid", details=details[:20]) from None


def _problem(err: object) -> str:
    assert isinstance(err, dict)
    if err.get("type") == "json_invalid":
        return "not valid JSON"
    return str(err.get("msg", "invalid"))[:200]


async def handle_error(request: Request, exc: Exception) -> Response:
    """The one error renderer: our own errors, Starlette's refusals, and the unexpected."""
    error: AgentError
    if isinstance(exc, AgentError):
        error = exc
    elif isinstance(exc, HTTPException):
        error = _from_http(exc)
    else:
        log.error("unhandled_error", exc_info=exc, path=request.url.path)
        error = InternalError("internal error")
    body = error.body(request_id_of(request))
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=error.status, headers=error.headers
    )


def _from_http(exc: HTTPException) -> AgentError:
    headers = dict(exc.headers or {})
    match exc.status_code:
        case 404:
            return NotFound("no such route", headers=headers)
        case 405:
            return MethodNotAllowed(str(exc.detail), headers=headers)
        case status:
            return InvalidRequest(str(exc.detail), status=status, headers=headers)


class RequestContextMiddleware:
    """Pure ASGI: fresh log context per request, and the request counter by endpoint and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        structlog.contextvars.clear_contextvars()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            metrics = scope.get("state", {}).get("metrics")
            endpoint = scope.get("endpoint")
            if metrics is not None:
                name = getattr(endpoint, "__name__", "unmatched")
                metrics.requests.labels(name, str(status)).inc()
