"""What a run has streamed so far (for `complete.stats`, metrics and the log line), and a failed
run's terminal event."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import structlog

from agent_service.errors import STORE_DOWN, STORE_ERRORS, AgentError
from agent_service.graph.state import RunContext
from agent_service.metrics import AgentMetrics
from agent_service.providers.base import TenantContext
from agent_service.runs.events import NodeEvent, RunMeta
from contracts.agent_api import ErrorEvent, Route, RunStats
from contracts.errors import RETRYABLE_CODES, ErrorCode

log = structlog.get_logger("agent_service.runs.runner")


@dataclass(slots=True)
class RunTally:
    """What a run has streamed so far: for `complete.stats`, metrics and the log line."""

    started: float
    metrics: AgentMetrics
    tokens: int = 0
    ttft_ms: float | None = None
    route: Route | None = None
    meta: RunMeta = field(default_factory=RunMeta)

    def final_token(self) -> None:
        self.tokens += 1
        if self.ttft_ms is None:
            self.ttft_ms = (time.perf_counter() - self.started) * 1000
            self.metrics.ttft.observe(self.ttft_ms / 1000)

    def event(self, event: NodeEvent) -> None:
        if event.event == "route_decision":
            self.route = event.route
        elif event.event == "tool_end":
            self.metrics.tool_calls.labels(event.tool, event.status).inc()

    def stats(self, run_id: str, tenant: TenantContext, ctx: RunContext) -> RunStats:
        meta, usage = self.meta, ctx.usage
        return RunStats(
            run_id=run_id,
            conversation_id=tenant.conversation_id,
            route=self.route,
            tokens=self.tokens,
            ttft_ms=None if self.ttft_ms is None else round(self.ttft_ms, 2),
            duration_ms=round((time.perf_counter() - self.started) * 1000, 2),
            usage=usage.to_usage() if usage.prompt_tokens or usage.completion_tokens else None,
            sql=meta.sql,
            row_count=meta.row_count,
            truncated=meta.truncated,
            sources=None if meta.sources is None else list(meta.sources),
        )


def merge_meta(kept: RunMeta, new: RunMeta) -> RunMeta:
    """Fields a later node reports replace earlier ones; unreported (None) fields are kept."""
    changes = {k: v for k in new.__slots__ if (v := getattr(new, k)) is not None}
    return replace(kept, **changes)


def error_event(exc: Exception, run_id: str) -> ErrorEvent:
    """The terminal event for a run that failed: the one place errors become events."""
    if isinstance(exc, TimeoutError):
        code, message = ErrorCode.RUN_TIMEOUT, "the reply took too long and was stopped"
    elif isinstance(exc, AgentError):  # RunFailed, or a store that went away mid-run
        code, message = ErrorCode(exc.code), exc.message
    elif isinstance(exc, STORE_ERRORS):
        # PostgreSQL went away mid-run (the memory write at the run's end): the question was
        # stored before the run, so a retry loses nothing
        log.warning("run_store_failed", run_id=run_id, error=repr(exc)[:300])
        code, message = ErrorCode.UPSTREAM_UNAVAILABLE, STORE_DOWN
    else:
        log.exception("run_failed", run_id=run_id)
        code, message = ErrorCode.INTERNAL, "the agent failed to answer; please try again"
    return ErrorEvent(code=code.value, message=message, retryable=code in RETRYABLE_CODES)
