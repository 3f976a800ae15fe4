"""The agent service's error hierarchy: the status and a stable code travel on the exception.

Every class derives from `contracts.errors.ServiceError`, the one base both tiers share; the app
renders all of them (and Starlette's own refusals, and the unexpected) in one handler,
`http_io.handle_error`.
"""

from __future__ import annotations

from typing import Final

import psycopg
from psycopg_pool import PoolTimeout

from contracts.errors import ErrorCode, ServiceError

STORE_ERRORS: Final = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)
"""What a store's driver raises when PostgreSQL is down or saturated: a 503, never a 500."""
STORE_DOWN: Final = "the conversation store is unavailable; please try again"


class AgentError(ServiceError):
    """An expected failure of the agent service."""


class InvalidRequest(AgentError):
    status, code = 400, ErrorCode.INVALID_REQUEST


class PayloadTooLarge(AgentError):
    status, code = 413, ErrorCode.PAYLOAD_TOO_LARGE


class UnsupportedMediaType(AgentError):
    status, code = 415, ErrorCode.UNSUPPORTED_MEDIA_TYPE


class Unauthorized(AgentError):
    status, code = 401, ErrorCode.UNAUTHORIZED


class Forbidden(AgentError):
    status, code = 403, ErrorCode.FORBIDDEN


class NotFound(AgentError):
    status, code = 404, ErrorCode.NOT_FOUND


class MethodNotAllowed(AgentError):
    status, code = 405, ErrorCode.METHOD_NOT_ALLOWED


class ConversationBusy(AgentError):
    status, code = 409, ErrorCode.CONVERSATION_BUSY


class StoreUnavailable(AgentError):
    """A store (conversations, memory, documents) that is down or saturated: retry later."""

    status, code = 503, ErrorCode.UPSTREAM_UNAVAILABLE


class RunFailed(AgentError):
    """A failure during a run; on a stream it becomes the terminal `error` event."""

    def __init__(self, code: ErrorCode, message: str, *, status: int = 502) -> None:
        super().__init__(message, code=code, status=status)


class InternalError(AgentError):
    """Anything unexpected: logged with its traceback, shown as a bare `internal error`."""

    status, code = 500, ErrorCode.INTERNAL
