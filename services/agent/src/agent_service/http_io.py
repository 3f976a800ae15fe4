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
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from contracts.errors import ErrorBody, ErrorCode, ErrorDetail

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


def error_response(request: Request, exc: AgentError) -> Response:
    body = exc.body(request_id_of(request))
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=exc.status, headers=exc.headers
    )


async def handle_agent_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AgentError)
    return error_response(request, exc)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}.get(
        exc.status_code, ErrorCode.INVALID_REQUEST
    )
    if exc.status_code == 404:
        return error_response(request, NotFound("no such route"))
    body = ErrorBody(
        error=ErrorDetail(code=code, message=str(exc.detail), request_id=request_id_of(request))
    )
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=exc.status_code, headers=exc.headers
    )


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled_error", exc_info=exc, path=request.url.path)
    body = ErrorBody(
        error=ErrorDetail(
            code=ErrorCode.INTERNAL, message="internal error", request_id=request_id_of(request)
        )
    )
    return JSONResponse(body.model_dump(exclude_none=True), status_code=500)


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
