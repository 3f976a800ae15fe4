"""Prometheus metrics of one app instance, on its own registry (no process globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class AgentMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "agent_http_requests",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=r,
        )
        self.runs_started = Counter("agent_runs_started", "Runs started", registry=r)
        self.runs_finished = Counter(
            "agent_runs_finished", "Runs finished by status", ["status"], registry=r
        )
        self.runs_cancelled = Counter(
            "agent_runs_cancelled", "Runs cancelled because the client went away", registry=r
        )
        self.active_streams = Gauge("agent_active_streams", "Open SSE streams", registry=r)
        self.tokens_streamed = Counter(
            "agent_final_tokens", "Tokens streamed on the final channel", registry=r
        )
        self.tool_calls = Counter(
            "agent_tool_calls", "Tool calls by tool and status", ["tool", "status"], registry=r
        )
        self.ttft = Histogram(
            "agent_time_to_first_token_seconds",
            "Time from request to the first final token",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
