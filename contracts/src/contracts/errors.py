"""Stable error codes and the error body every tier renders for a refused request."""

from __future__ import annotations

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
