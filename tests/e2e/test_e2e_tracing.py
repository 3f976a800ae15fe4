"""One trace across the hops: the gateway's request → the agent's request and run (classify, SQL,
answer as spans, with tenant and conversation) → each model call, the W3C `traceparent` carried
to the model server; message text only when asked for. Spans from the SDK's in-memory exporter."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from support.gateway_harness import gateway_settings, read_sse, running_gateway, ui_events
from support.model_harness import ModelStack, answer, model_stack, route, script, sql

from contracts.tracing import CAPTURE_CONTENT_ENV

QUESTION = "How many technicians are active?"
ANSWER = "You have 4 active technicians."


class EndSignal(SpanProcessor):
    """Wakes the test when a span ends (spans end on the test's own event loop)."""

    def __init__(self) -> None:
        self.ended = asyncio.Event()

    def on_end(self, span: ReadableSpan) -> None:  # noqa: ARG002 (the SDK's signature)
        self.ended.set()


class Traces:
    """Both tiers' providers exporting to one in-memory exporter."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.signal = EndSignal()
        self.gateway = self._provider("gateway")
        self.agent = self._provider("agent-service")

    def _provider(self, service: str) -> TracerProvider:
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        provider.add_span_processor(self.signal)
        return provider

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    async def until_ended(self, name: str) -> ReadableSpan:
        async with asyncio.timeout(10):
            while True:
                found = [s for s in self.spans() if s.name == name]
                if found:
                    return found[0]
                self.signal.ended.clear()
                await self.signal.ended.wait()


@pytest.fixture
def data_dir(tmp_path: Path, e2e_template: Path) -> Path:
    target = tmp_path / "agent"
    shutil.copytree(e2e_template, target)
    return target


@pytest.fixture
async def traced(data_dir: Path) -> AsyncIterator[tuple[Traces, ModelStack, Any]]:
    traces = Traces()
    rules = script(
        route("sql"),
        sql("SELECT count(*) AS active_technicians FROM technicians WHERE status = 'active'"),
        answer(ANSWER),
    )
    async with (
        model_stack(rules, data_dir, tracer_provider=traces.agent) as agent,
        running_gateway(gateway_settings(agent.url), tracer_provider=traces.gateway) as gw,
    ):
        yield traces, agent, gw


async def ask(gw: Any) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            f"{gw.url}/api/chat/stream",
            json={"message": QUESTION, "conversation_id": "conv-traced"},
            headers=gw.auth(),
        ) as resp,
    ):
        assert resp.status == 200
        return ui_events(await read_sse(resp))


def children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


async def test_one_trace_from_the_gateway_through_the_run_to_each_model_call(
    traced: tuple[Traces, ModelStack, Any],
) -> None:
    traces, agent, gw = traced
    events = await ask(gw)
    assert events[-1]["type"] == "complete"
    root = await traces.until_ended("POST /api/chat/stream")
    spans = traces.spans()

    assert root.kind == SpanKind.SERVER and root.parent is None
    assert root.context is not None
    assert {s.context.trace_id for s in spans if s.context} == {root.context.trace_id}
    [served] = children(spans, root)
    assert (served.name, served.kind) == ("POST /internal/chat/stream", SpanKind.SERVER)
    assert served.resource.attributes["service.name"] == "agent-service"
    [run] = children(spans, served)
    assert run.name == "agent.run"
    steps = children(spans, run)
    assert [s.name for s in sorted(steps, key=lambda s: s.start_time or 0)] == [
        "agent.classify",
        "agent.sql",
        "agent.answer",
    ]
    for step in steps:  # each step's model call is its child
        assert [c.name for c in children(spans, step)] == ["model.call"], step.name

    for span in (root, run):
        assert span.attributes is not None
        assert span.attributes["app.company_id"] == "acme-hvac"
        assert span.attributes["app.user_id"] == "u-alice"
        assert span.attributes["app.conversation_id"] == "conv-traced"
    # No message text anywhere unless asked for.
    values = [str(v) for s in spans for v in (s.attributes or {}).values()]
    assert not any(QUESTION in v or ANSWER in v for v in values)

    # The model server received each call's traceparent: this trace, that call's span.
    calls = {f"{s.context.span_id:016x}" for s in spans if s.name == "model.call" and s.context}
    sent = [r.headers.get("traceparent", "") for r in agent.requests()]
    assert len(sent) == 3
    for header in sent:
        _, trace_id, parent_id, _ = header.split("-")
        assert int(trace_id, 16) == root.context.trace_id
        assert parent_id in calls


async def test_message_text_is_on_the_run_span_only_when_enabled(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CAPTURE_CONTENT_ENV, "true")
    traces = Traces()
    rules = script(route("sql"), sql("SELECT count(*) FROM technicians"), answer(ANSWER))
    async with (
        model_stack(rules, data_dir, tracer_provider=traces.agent) as agent,
        running_gateway(gateway_settings(agent.url), tracer_provider=traces.gateway) as gw,
    ):
        await ask(gw)
        run = await traces.until_ended("agent.run")
    assert run.attributes is not None and run.attributes["app.message"] == QUESTION


async def test_without_otel_settings_nothing_is_traced_or_propagated(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    rules = script(route("sql"), sql("SELECT count(*) FROM technicians"), answer(ANSWER))
    async with (
        model_stack(rules, data_dir) as agent,
        running_gateway(gateway_settings(agent.url)) as gw,
    ):
        events = await ask(gw)
        sent = [r.headers for r in agent.requests()]
    assert events[-1]["type"] == "complete"
    assert sent and not any("traceparent" in h for h in sent)
