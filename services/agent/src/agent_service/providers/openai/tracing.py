"""The model call as a span: an httpx transport that opens a client span per request to the
model, sends its W3C `traceparent` (so a tracing model gateway joins the trace) and ends the
span when the response body has been read (a streamed answer included)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import TypeVar

from langchain_openai._compat import httpx as sdk_httpx
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from contracts.tracing import inject_traceparent

T = TypeVar("T")


class TracedTransport(sdk_httpx.AsyncBaseTransport):
    """Wraps the pool's transport; with the no-op tracer it only passes requests through."""

    def __init__(self, inner: sdk_httpx.AsyncBaseTransport, tracer: Tracer) -> None:
        self._inner = inner
        self._tracer = tracer

    async def handle_async_request(self, request: sdk_httpx.Request) -> sdk_httpx.Response:
        """Send `request` under a `model.call` span (a child of the step that asked)."""
        span = self._tracer.start_span(
            "model.call",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.system": "openai",
                "http.request.method": request.method,
                "server.address": request.url.host,
                "url.path": request.url.path,
            },
        )
        inject_traceparent(request.headers, trace.set_span_in_context(span))
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            span.end()
            raise
        span.set_attribute("http.response.status_code", response.status_code)
        if response.status_code >= 400:
            span.set_status(Status(StatusCode.ERROR))
        if isinstance(response.stream, sdk_httpx.AsyncByteStream):
            response.stream = _EndsSpan(response.stream, span)
        else:  # not from an async pool; nothing to wait for
            span.end()
        return response

    async def aclose(self) -> None:
        """Close the pool."""
        await self._inner.aclose()


class _EndsSpan(sdk_httpx.AsyncByteStream):
    """A response body that ends its call's span once read or closed."""

    def __init__(self, inner: sdk_httpx.AsyncByteStream, span: Span) -> None:
        self._inner = inner
        self._span = span

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._span.end()


def _model_span(tracer: Tracer, host: str) -> tuple[Span, dict[str, str]]:
    span = tracer.start_span(
        "model.call",
        kind=SpanKind.CLIENT,
        attributes={
            "gen_ai.system": "openai",
            "http.request.method": "POST",
            "server.address": host,
            "url.path": "/chat/completions",
        },
    )
    headers: dict[str, str] = {}
    inject_traceparent(headers, trace.set_span_in_context(span))
    return span, headers


def _failed(span: Span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))


async def traced_call(
    tracer: Tracer, host: str, call: Callable[[dict[str, str]], Awaitable[T]]
) -> T:
    """A call sent outside httpx (`stream.post_json`) under its own `model.call` span, its
    `traceparent` in the request's headers."""
    span, headers = _model_span(tracer, host)
    try:
        return await call(headers)
    except BaseException as exc:
        _failed(span, exc)
        raise
    finally:
        span.end()


async def traced_stream(
    tracer: Tracer, host: str, open_stream: Callable[[dict[str, str]], AsyncGenerator[str, None]]
) -> AsyncGenerator[str, None]:
    """A streamed answer read outside httpx (`stream.stream_text`) under its own `model.call`
    span, its `traceparent` in the request's headers; the span ends when the stream does."""
    span, headers = _model_span(tracer, host)
    try:
        async with aclosing(open_stream(headers)) as pieces:
            async for piece in pieces:
                yield piece
    except BaseException as exc:
        _failed(span, exc)
        raise
    finally:
        span.end()
