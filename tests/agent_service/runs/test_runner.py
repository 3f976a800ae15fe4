"""The run's stream body: every frame reaches a slow reader, and the run ends with one terminal."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import pytest

from agent_service.metrics import AgentMetrics
from agent_service.providers.base import TenantContext, UsageMeter
from agent_service.runs.events import Token
from agent_service.runs.runner import RunLimits, Runner
from contracts.tracing import NO_TRACER


def _nothing() -> None:
    pass


class ScriptedGraph:
    """A stand-in for the compiled graph: writes `count` final tokens to the run's output, a few
    at a time between waits (as model reads do)."""

    checkpointer = None

    def __init__(self, count: int) -> None:
        self.count = count

    async def ainvoke(self, *_: Any, context: Context, **__: Any) -> None:
        for i in range(self.count):
            context.emit(Token("final", f"t{i} "))
            if i % 3 == 2:
                await asyncio.sleep(0)


class Context:
    usage = UsageMeter()
    tracer = NO_TRACER
    trace = None

    def __init__(self) -> None:
        self.out: list[Token] = []
        self.notify: Callable[[], None] = _nothing

    def emit(self, item: Token) -> None:
        self.out.append(item)
        self.notify()


@pytest.mark.parametrize("tokens", [15, 16, 17, 40, 96, 112])
async def test_a_slow_reader_gets_every_frame_and_the_terminal(tokens: int) -> None:
    runner = Runner(
        ScriptedGraph(tokens),  # type: ignore[arg-type]
        lambda _: Context(),  # type: ignore[arg-type,return-value]
        RunLimits(run_timeout_s=30, heartbeat_s=15, stall_timeout_s=5, buffer_events=16),
        AgentMetrics(),
    )

    async def done() -> None:
        pass

    tenant = TenantContext(company_id="acme-hvac", user_id="u-alice", conversation_id="c1")
    body = b""
    async for chunk in runner.sse_body(tenant, "q", on_done=done):
        body += chunk
        await asyncio.sleep(0.002)  # slower than the run: the buffer fills up
    ids = [int(x) for x in re.findall(rb"^id: (\d+)$", body, re.M)]
    assert ids == list(range(1, tokens + 2))
    assert re.findall(rb"^event: (complete|error)$", body, re.M) == [b"complete"]
