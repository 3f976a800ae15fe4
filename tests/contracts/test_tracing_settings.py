"""Tracing is off unless the standard OTEL_* settings ask for it."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from contracts.tracing import (
    NO_TRACER,
    capture_content,
    provider_from_env,
    tracer_of,
    tracing_enabled,
)


@pytest.mark.parametrize(
    ("env", "enabled"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "x"}, False),
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
    ],
)
def test_tracing_follows_the_standard_settings(env: dict[str, str], enabled: bool) -> None:
    assert tracing_enabled(env) is enabled


def test_off_is_the_no_op_tracer() -> None:
    assert provider_from_env("gateway", {}) is None
    assert tracer_of(None, "gateway") is NO_TRACER


def test_on_exports_in_batches_under_the_service_name() -> None:
    env = {"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "edge"}
    provider = provider_from_env("gateway", env)
    assert provider is not None
    try:
        assert provider.resource.attributes["service.name"] == "edge"
        processors = provider._active_span_processor._span_processors
        assert any(isinstance(p, BatchSpanProcessor) for p in processors)
    finally:
        provider.shutdown()


def test_an_unknown_exporter_is_refused() -> None:
    with pytest.raises(ValueError, match="OTEL_TRACES_EXPORTER"):
        provider_from_env("gateway", {"OTEL_TRACES_EXPORTER": "zipkin"})


def test_message_text_is_captured_only_when_asked() -> None:
    assert not capture_content({})
    assert capture_content({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"})
