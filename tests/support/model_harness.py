"""The agent service on the OpenAI-compatible provider, against the fake server, on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

from agent_service.app import create_app
from agent_service.settings import AgentSettings
from fake_openai import (
    FakeServer,
    Match,
    RecordedRequest,
    Reply,
    Rule,
    Script,
    ToolCall,
    running_fake_openai,
)
from support.servers import serve_asgi

CLASSIFY_TOOL = "RouteDecision"
"""The function `with_structured_output(RouteDecision, method="function_calling")` offers."""
SQL_TOOL = "run_sql"

FAST = {
    "model_name": "fake-model",
    "model_timeout_s": 2.0,
    "model_stall_timeout_s": 1.0,
    "model_connect_timeout_s": 1.0,
    "model_retry_base_s": 0.01,
    "model_retry_max_s": 0.05,
    "model_startup_check": False,
}
"""Small timeouts and backoffs so failure tests take well under a second each; no start-up probe
(it would be one more request in every script: `test_model_guard_rails.py` tests it)."""


@dataclass(frozen=True, slots=True)
class ModelStack:
    url: str
    fake: FakeServer
    settings: AgentSettings

    def requests(self) -> list[RecordedRequest]:
        return list(self.fake.state.requests)

    def offered(self, tool: str) -> list[dict[str, Any]]:
        """Bodies of the requests that offered `tool`."""
        return [r.body for r in self.requests() if tool in tool_names(r.body)]

    def answering(self) -> list[dict[str, Any]]:
        """Bodies of the requests that offered no tools (the answering steps)."""
        return [r.body for r in self.requests() if not r.body.get("tools")]


def tool_names(body: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in body.get("tools") or []]


def texts(body: dict[str, Any], role: str | None = None) -> list[str]:
    """The string contents of a request's messages (of one role, if given)."""
    return [
        m["content"]
        for m in body["messages"]
        if isinstance(m.get("content"), str) and (role is None or m["role"] == role)
    ]


@asynccontextmanager
async def model_stack(
    script: Script, data_dir: Path, tracer_provider: TracerProvider | None = None, **overrides: Any
) -> AsyncIterator[ModelStack]:
    """The fake model server, then the agent service pointed at it (closed in reverse order)."""
    async with running_fake_openai(script) as fake:
        settings = AgentSettings(
            data_dir=data_dir,
            env="test",
            seed_on_start=False,
            provider="openai",
            openai_base_url=fake.base_url,
            openai_api_key="test-key",
            **{**FAST, **overrides},
        )
        async with serve_asgi(create_app(settings, tracer_provider=tracer_provider)) as url:
            yield ModelStack(url=url, fake=fake, settings=settings)


def route(route: str, *, when: str | None = None, confidence: float = 0.9, **kw: Any) -> Rule:
    """The classifier's structured answer, for questions containing `when` (any, if None)."""
    return Rule(
        name=f"classify-{route}",
        match=Match(tool=CLASSIFY_TOOL, last_user=when),
        reply=Reply.json(
            {"route": route, "confidence": confidence, "reason": f"a {route} question"}
        ),
        **kw,
    )


def sql(query: str, *, attempt: int = 0, note: str = "Looking that up.", **kw: Any) -> Rule:
    """The SQL writer's tool call on its `attempt`-th try (0 = first, before any tool result)."""
    return Rule(
        name=f"sql-{attempt}",
        match=Match(tool=SQL_TOOL, tool_results=attempt),
        reply=Reply.tools(ToolCall(SQL_TOOL, {"sql": query, "note": note})),
        **kw,
    )


def answer(text: str, *, match: Match | None = None, **kw: Any) -> Rule:
    """A streamed answer to a request without tools."""
    return Rule(
        name="answer",
        match=match or Match(has_tools=False),
        reply=Reply.text(text),
        **kw,
    )


def script(*rules: Rule) -> Script:
    """Rules in order; anything unmatched gets an obviously wrong default."""
    return Script(rules=rules, default=Rule(name="default", reply=Reply.text("UNSCRIPTED")))
