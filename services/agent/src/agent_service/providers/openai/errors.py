"""How a failed call to the model endpoint becomes a stable error code, and whether to retry it.

| failure | code | retried (before any token) |
|---|---|---|
| HTTP 429 | MODEL_RATE_LIMITED | yes, honouring `Retry-After` up to the cap |
| HTTP 408, a client timeout, a stall between chunks | MODEL_TIMEOUT | yes |
| HTTP 409, 5xx, a lost connection, an error event in a stream | MODEL_UNAVAILABLE | yes |
| HTTP 401, 403, 404 (key, permission, model name) | MODEL_UNAVAILABLE | no |
| other HTTP 4xx, unparsable chunks, output that breaks its contract | MODEL_BAD_RESPONSE | no |
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
import httpx
import openai
from langchain_openai._compat import httpx as sdk_httpx

from agent_service.errors import RunFailed
from contracts.errors import ErrorCode

_TIMEOUTS = (
    openai.APITimeoutError,
    httpx.TimeoutException,
    sdk_httpx.TimeoutException,
    TimeoutError,
)
_TRANSPORT = (
    openai.APIConnectionError,
    httpx.TransportError,
    sdk_httpx.TransportError,
    # the answer stream's own reader (`stream.py`): refused or lost connections, a cut body
    aiohttp.ClientConnectionError,
    aiohttp.ClientPayloadError,
    aiohttp.ClientResponseError,
)

_MESSAGES = {
    ErrorCode.MODEL_RATE_LIMITED: "the model is rate-limiting requests; try again shortly",
    ErrorCode.MODEL_TIMEOUT: "the model did not answer in time; try again",
    ErrorCode.MODEL_UNAVAILABLE: "the model is unavailable right now; try again shortly",
    ErrorCode.MODEL_BAD_RESPONSE: "the model returned a response that could not be used",
}


@dataclass(frozen=True, slots=True)
class ModelFailure:
    """A classified failure: its code, whether a retry may help, and the server's hint."""

    code: ErrorCode
    retryable: bool
    detail: str
    """For logs only: may name the endpoint's own message, never shown to users."""
    retry_after_s: float | None = None

    def run_failed(self) -> RunFailed:
        """The exception that ends the run with this failure's code and a safe message."""
        return RunFailed(self.code, _MESSAGES[self.code])


class BadModelOutput(ValueError):
    """The endpoint answered, but not in the shape the step asked for."""


def classify_failure(exc: BaseException) -> ModelFailure | None:
    """The failure `exc` stands for; None when it is not a model-endpoint failure (a bug)."""
    detail = f"{type(exc).__name__}: {str(exc)[:300]}"
    if isinstance(exc, openai.APIStatusError):
        return _from_status(exc.status_code, detail, exc.response.headers)
    # Mid-stream transport errors come raw from the SDK's httpx (httpx2 under openai>=3), or
    # from aiohttp for the answer stream; aiohttp's timeouts are also TimeoutErrors.
    if isinstance(exc, _TIMEOUTS):
        return ModelFailure(ErrorCode.MODEL_TIMEOUT, True, detail)
    if isinstance(exc, _TRANSPORT):
        return ModelFailure(ErrorCode.MODEL_UNAVAILABLE, True, detail)
    if isinstance(exc, openai.APIError):
        # an `{"error": ...}` event inside a stream: the server failed while answering
        return ModelFailure(ErrorCode.MODEL_UNAVAILABLE, True, detail)
    if isinstance(exc, ValueError):
        # unparsable JSON in a chunk, a schema violation, BadModelOutput
        return ModelFailure(ErrorCode.MODEL_BAD_RESPONSE, False, detail)
    return None


def _from_status(status: int, detail: str, headers: Mapping[str, str]) -> ModelFailure:
    if status == 429:
        return ModelFailure(ErrorCode.MODEL_RATE_LIMITED, True, detail, _retry_after(headers))
    if status == 408:
        return ModelFailure(ErrorCode.MODEL_TIMEOUT, True, detail)
    if status == 409 or status >= 500:
        return ModelFailure(ErrorCode.MODEL_UNAVAILABLE, True, detail, _retry_after(headers))
    if status in (401, 403, 404):
        return ModelFailure(ErrorCode.MODEL_UNAVAILABLE, False, detail)
    return ModelFailure(ErrorCode.MODEL_BAD_RESPONSE, False, detail)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("retry-after-ms")
    scale = 1000.0
    if raw is None:
        raw, scale = headers.get("retry-after"), 1.0
    if raw is None:
        return None
    try:
        value = float(raw) / scale
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff
    return value if 0 <= value < 3600 else None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and full jitter."""

    max_retries: int
    base_s: float
    max_s: float

    def delay(self, retry: int, failure: ModelFailure, rng: random.Random) -> float:
        """Seconds to wait before retry number `retry` (0-based)."""
        if failure.retry_after_s is not None:
            return min(failure.retry_after_s, self.max_s)
        ceiling = min(self.max_s, self.base_s * (2**retry))
        return rng.uniform(ceiling / 2, ceiling)
