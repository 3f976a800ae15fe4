"""The agent service's error hierarchy: the status and a stable code travel on the exception."""

from __future__ import annotations

from contracts.errors import RETRYABLE_CODES, ErrorBody, ErrorCode, ErrorDetail


class AgentError(Exception):
    """An expected failure; rendered once, by `render_error`, as an `ErrorBody`."""

    status: int = 500
    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(
        self,
        message: str,
        *,
        details: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE_CODES

    def body(self, request_id: str | None) -> ErrorBody:
        return ErrorBody(
            error=ErrorDetail(
                code=self.code,
                message=self.message,
                request_id=request_id,
                retryable=self.retryable,
                details=self.details,
            )
        )


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


class ConversationBusy(AgentError):
    status, code = 409, ErrorCode.CONVERSATION_BUSY


class RunFailed(AgentError):
    """A failure during a run; on a stream it becomes the terminal `error` event."""

    def __init__(self, code: ErrorCode, message: str, *, status: int = 502) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
