"""Typed keys of the app's resources and the registry of open streams (for shutdown)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

from aiohttp import web
from opentelemetry.trace import Tracer

from contracts.client import AgentClient
from gateway.auth import Principal
from gateway.metrics import GatewayMetrics
from gateway.rate_limit import Limiter
from gateway.relay import Relay, RelayConfig
from gateway.run_buffer import Producer, RunStore
from gateway.settings import GatewaySettings


class TokenVerifier(Protocol):
    """What the gateway needs of a user-token verifier (`gateway.auth.JwtVerifier`)."""

    async def verify(self, token: str) -> Principal:
        """The verified identity of `token`; raises a `GatewayError` (`gateway.auth.AuthError`)."""
        ...


@dataclass(slots=True)
class OpenStreams:
    """Runs and sockets open right now, so shutdown can end them cleanly."""

    relays: set[Relay] = field(default_factory=set)
    sockets: set[web.WebSocketResponse] = field(default_factory=set)
    sockets_per_user: dict[tuple[str, str], int] = field(default_factory=dict)
    """Authenticated sockets per (company, user) on this replica, for `ws_max_per_user`."""
    unauthenticated_per_ip: dict[str, int] = field(default_factory=dict)
    """Sockets per peer address still waiting for `auth` (`ws_max_unauthenticated_per_ip`)."""
    closing: bool = False
    draining: bool = False
    """SIGTERM came and `drain_s` runs: new requests get 503, open streams carry on."""
    drained: asyncio.Event = field(default_factory=asyncio.Event)
    """Set whenever no relay is open."""

    def __post_init__(self) -> None:
        self.drained.set()


SETTINGS: Final = web.AppKey("settings", GatewaySettings)
METRICS: Final = web.AppKey("metrics", GatewayMetrics)
AGENT: Final = web.AppKey("agent", AgentClient)
LIMITER: Final = web.AppKey("limiter", Limiter)
CONVERSATION_LIMITER: Final = web.AppKey("conversation_limiter", Limiter)
READ_FALLBACK_LIMITER: Final = web.AppKey("read_fallback_limiter", Limiter)
"""In-process limits for conversation reads while the shared (Redis) limiter is unavailable."""
"""The request windows of the conversation list, history and delete routes."""
VERIFIER: Final = web.AppKey("verifier", TokenVerifier)
RELAY: Final = web.AppKey("relay", RelayConfig)
"""The relay limits of every run, built once from the settings."""
OPEN_STREAMS: Final = web.AppKey("open_streams", OpenStreams)
RUN_STORE: Final = web.AppKey("run_store", RunStore)
"""Buffered runs, for resuming (`gateway.run_buffer`, `gateway.redis_runs`)."""
RUN_PRODUCERS: Final = web.AppKey("run_producers", dict[str, Producer])
"""The producer of each run this process buffers, by run id (`gateway.resume`)."""
TRACER: Final = web.AppKey("tracer", Tracer)
"""The gateway's tracer (`contracts.tracing`: the no-op one when tracing is off)."""
REQUEST_ID: Final = web.RequestKey("request_id", str)
LIMIT_HEADERS: Final = web.RequestKey("limit_headers", Mapping[str, str])
