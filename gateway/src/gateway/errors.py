"""The gateway's error hierarchy: each error carries its HTTP status and stable code."""

from __future__ import annotations

from collections.abc import Mapping

from contracts.errors import RETRYABLE_CODES, ErrorBody, ErrorCode, ErrorDetail


class GatewayError(Exception):
    """A refused request: rendered once, by the error middleware, as `ErrorBody` JSON."""

    status: int = 500
    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        retryable: bool | None = None,
        headers: Mapping[str, str] | None = None,
        details: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_code: str = code if code is not None else self.code
        if status is not None:
            self.status = status
        self.retryable = self.error_code in RETRYABLE_CODES if retryable is None else retryable
        self.headers: dict[str, str] = dict(headers or {})
        self.details = details

    def body(self, request_id: str | None) -> ErrorBody:
        """The JSON body of this error."""
        return ErrorBody(
            error=ErrorDetail(
                code=self.error_code,
                message=self.message,
                request_id=request_id,
                retryable=self.retryable,
                details=self.details,
            )
        )


class InvalidRequest(GatewayError):
    status = 400
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
