"""The gateway's error hierarchy: each error carries its HTTP status, stable code and
retryability (`contracts.errors.ServiceError`); auth and limiter failures are subclasses too."""

from __future__ import annotations

from contracts.errors import ErrorCode, ServiceError


class GatewayError(ServiceError):
    """A refused request: rendered once, by the error middleware (or on a WebSocket, by the
    socket's session), as `ErrorBody` JSON."""


class InvalidRequest(GatewayError):
    status = 400
    code = ErrorCode.INVALID_REQUEST


class BodyTimeout(GatewayError):
    """The body did not arrive within the read deadline (a slow or stalled sender)."""

    status = 408
    code = ErrorCode.INVALID_REQUEST


class PayloadTooLarge(GatewayError):
    status = 413
    code = ErrorCode.PAYLOAD_TOO_LARGE


class UnsupportedMediaType(GatewayError):
    status = 415
    code = ErrorCode.UNSUPPORTED_MEDIA_TYPE


class Unauthorized(GatewayError):
    status = 401
    code = ErrorCode.UNAUTHORIZED


class Forbidden(GatewayError):
    status = 403
    code = ErrorCode.FORBIDDEN


class NotFound(GatewayError):
    status = 404
    code = ErrorCode.NOT_FOUND


class MethodNotAllowed(GatewayError):
    status = 405
    code = ErrorCode.METHOD_NOT_ALLOWED


class RateLimited(GatewayError):
    status = 429
    code = ErrorCode.RATE_LIMITED


class UpstreamUnavailable(GatewayError):
    status = 503
    code = ErrorCode.UPSTREAM_UNAVAILABLE


class ShuttingDown(GatewayError):
    status = 503
    code = ErrorCode.SHUTTING_DOWN
