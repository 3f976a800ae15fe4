"""OpenTelemetry for both tiers: off unless the standard `OTEL_*` settings ask for it, W3C
`traceparent` carried on every hop (gateway → agent → model).

Each app builds its own `TracerProvider` (`provider_from_env`, in `create_app`) and passes its
tracer down; nothing here sets OpenTelemetry's process-global provider. With tracing off the
tracer is OpenTelemetry's no-op one: spans cost a function call and no header is sent.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Final

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.trace import Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

W3C: Final = TraceContextTextMapPropagator()
"""The one propagator both tiers use: `traceparent` / `tracestate` (W3C Trace Context)."""
NO_TRACER: Final[Tracer] = trace.NoOpTracer()
"""What a tier traces with when tracing is off."""
CAPTURE_CONTENT_ENV: Final = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
"""`true`: spans may carry the user's message (off by default: message text is user data)."""

# Span attributes, the same names on both tiers.
TENANT_ATTR: Final = "app.company_id"
USER_ATTR: Final = "app.user_id"
CONVERSATION_ATTR: Final = "app.conversation_id"
MESSAGE_ATTR: Final = "app.message"


def tracing_enabled(env: Mapping[str, str]) -> bool:
    """Whether the standard settings turn tracing on: `OTEL_TRACES_EXPORTER` other than `none`,
    or an OTLP endpoint; `OTEL_SDK_DISABLED=true` wins over both."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER")
    if exporter is not None:
        return exporter.strip().lower() not in ("", "none")
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def capture_content(env: Mapping[str, str]) -> bool:
    """Whether spans may carry message text (`CAPTURE_CONTENT_ENV` is `true`)."""
    return env.get(CAPTURE_CONTENT_ENV, "").strip().lower() == "true"


def provider_from_env(service_name: str, env: Mapping[str, str]) -> TracerProvider | None:
    """A provider exporting as the `OTEL_*` settings say, or None when tracing is off.

    `OTEL_TRACES_EXPORTER` is `otlp` (the default: OTLP over HTTP, configured by the
    `OTEL_EXPORTER_OTLP_*` settings) or `console`; `OTEL_SERVICE_NAME` renames the service;
    the SDK reads `OTEL_TRACES_SAMPLER`, `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_BSP_*` itself.
    """
    if not tracing_enabled(env):
        return None
    name = env.get("OTEL_SERVICE_NAME") or service_name
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    provider.add_span_processor(BatchSpanProcessor(_exporter(env)))
    return provider


def _exporter(env: Mapping[str, str]) -> SpanExporter:
    kinds = [k.strip().lower() for k in env.get("OTEL_TRACES_EXPORTER", "otlp").split(",")]
    if "console" in kinds and "otlp" not in kinds:
        return ConsoleSpanExporter()
    if not {"otlp", "console"} & set(kinds):
        raise ValueError(f"OTEL_TRACES_EXPORTER={','.join(kinds)}: use otlp, console or none")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def tracer_of(provider: TracerProvider | None, name: str) -> Tracer:
    """The provider's tracer for `name`, or the no-op tracer without one."""
    return provider.get_tracer(name) if provider is not None else NO_TRACER


def inject_traceparent(headers: MutableMapping[str, str], context: Context | None = None) -> None:
    """Add `traceparent` (and `tracestate`) for the current span to outgoing `headers`; nothing
    when no span is recording (tracing off)."""
    W3C.inject(headers, context=context)


def extract_context(headers: Mapping[str, str]) -> Context:
    """The caller's trace context from incoming `headers` (empty when they carry none)."""
    return W3C.extract(headers)
