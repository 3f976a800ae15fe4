"""Prometheus metrics of one gateway app, in its own registry (no process globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


class GatewayMetrics:
    """The gateway's counters, gauges and histograms; render with `exposition()`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "gateway_requests",
            "HTTP requests and WebSocket handshakes by route and status.",
            ["route", "status"],
            registry=self.registry,
        )
        self.active_streams = Gauge(
            "gateway_active_streams",
            "Runs being relayed now, by transport.",
            ["transport"],
            registry=self.registry,
        )
        self.time_to_first_token = Histogram(
            "gateway_time_to_first_token_seconds",
            "From the request reaching the gateway to the first answer token sent to the client.",
            ["transport"],
            buckets=_TTFT_BUCKETS,
            registry=self.registry,
        )
        self.tokens_relayed = Counter(
            "gateway_tokens_relayed",
            "Answer and reasoning tokens relayed to clients.",
            ["transport"],
            registry=self.registry,
        )
        self.limit_rejections = Counter(
            "gateway_limit_rejections",
            "Requests refused by a rate or concurrency limit, by policy.",
            ["policy"],
            registry=self.registry,
        )
        self.stream_endings = Counter(
            "gateway_stream_endings",
            "How relayed runs ended: complete, error, client_gone, slow_client, stopped, shutdown.",
            ["transport", "ending"],
            registry=self.registry,
        )

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
