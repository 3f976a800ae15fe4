"""Stable error codes, the error body every tier renders for a refused request, and the base of
every tier's error hierarchy (`ServiceError`)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class ErrorCode(StrEnum):
    """Codes are part of the contract: clients switch on them, so they never change meaning."""

    # request shape and identity
    INVALID_REQUEST = "INVALID_REQUEST"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    UNAUTHORIZED = "UNAUTHORIZED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    CONVERSATION_BUSY = "CONVERSATION_BUSY"
    RATE_LIMITED = "RATE_LIMITED"
    # the run
    MODEL_UNAVAILABLE = "MODEL_UNAVAILABLE"
    MODEL_TIMEOUT = "MODEL_TIMEOUT"
    MODEL_RATE_LIMITED = "MODEL_RATE_LIMITED"
    MODEL_BAD_RESPONSE = "MODEL_BAD_RESPONSE"
    RUN_TIMEOUT = "RUN_TIMEOUT"
    CANCELLED = "CANCELLED"
    # transport and infrastructure
    UPSTREAM_UNAVAILABLE = "UPSTREAM_UNAVAILABLE"
    UPSTREAM_PROTOCOL_ERROR = "UPSTREAM_PROTOCOL_ERROR"
    SHUTTING_DOWN = "SHUTTING_DOWN"
    INTERNAL = "INTERNAL"


RETRYABLE_CODES: frozenset[ErrorCode] = frozenset(
    {
        ErrorCode.CONVERSATION_BUSY,
        ErrorCode.RATE_LIMITED,
        ErrorCode.MODEL_UNAVAILABLE,
        ErrorCode.MODEL_TIMEOUT,
        ErrorCode.MODEL_RATE_LIMITED,
        ErrorCode.RUN_TIMEOUT,
        ErrorCode.UPSTREAM_UNAVAILABLE,
        ErrorCode.SHUTTING_DOWN,
    }
)


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    message: str
    request_id: str | None = None
    retryable: bool = False
    details: list[dict[str, str]] | None = None
    """For `INVALID_REQUEST`: one entry per invalid field, `{"field": ..., "problem": ...}`."""


class ErrorBody(BaseModel):
    """JSON body of every 4xx/5xx response: `{"error": {...}}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    error: ErrorDetail


class ServiceError(Exception):
    """A refused or failed request: its stable code, HTTP status and whether a retry may succeed
    travel on the exception, and one handler per tier renders `body()`.

    Each tier subclasses it (the gateway's `GatewayError`, the agent service's `AgentError`, the
    client's `AgentAPIError`); a subclass fixes `status` and `code`, an instance may override
    them (an agent refusal passed through keeps the agent's code).
    """

    status: int = 500
    code: str = ErrorCode.INTERNAL

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
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.retryable: bool = self.code in RETRYABLE_CODES if retryable is None else retryable
        self.headers: dict[str, str] = dict(headers or {})
        """Response headers that go with the refusal (`Retry-After`, `RateLimit`, `Allow`)."""
        self.details = details

    def body(self, request_id: str | None) -> ErrorBody:
        """The JSON body of this error."""
        return ErrorBody(
            error=ErrorDetail(
                code=self.code,
                message=self.message,
                request_id=request_id,
                retryable=self.retryable,
                details=self.details,
            )
        )
