"""What the WebSocket handshake decides: origin, subprotocol and any token it carries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import structlog
from aiohttp import web
from yarl import URL

from gateway.auth import bearer_token
from gateway.settings import GatewaySettings

log = structlog.get_logger("gateway.ws")

APP_PROTOCOL: Final = "chat.v1"
"""The subprotocol name of /ws/chat's message format; optional for clients."""
BEARER_PREFIX: Final = "bearer."
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Handshake:
    """The token found at the handshake (if any), where it came from, and the protocol to echo."""

    token: str | None
    source: str | None
    protocol: str | None


def origin_allowed(request: web.Request, settings: GatewaySettings) -> bool:
    """Browsers send `Origin`: it must be allow-listed or this server's own; tools send none."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    if origin in settings.cors_origins:
        return True
    try:
        parsed = URL(origin)
    except ValueError:
        return False
    # Same origin: the page served by this gateway (the chat page) talking to itself.
    default_port = _DEFAULT_PORTS.get(parsed.scheme)
    if parsed.host is None or parsed.port is None or default_port is None:
        return False
    own = _host_port(request.host, default_port)
    return f"{parsed.host}:{parsed.port}".lower() == own.lower()


def _host_port(host: str, default_port: int) -> str:
    """The Host header as host:port; a Host without a port takes the Origin's scheme's default.

    Not `request.secure`: behind a TLS-terminating proxy the gateway sees plain HTTP while the
    browser's Origin says https, and the chat page must still reach its own socket. The browser
    sends the Host it connected to, so a Host without a port means the default port of the
    scheme it used, which is the Origin's.
    """
    if ":" in host.rsplit("]", 1)[-1]:
        return host
    return f"{host}:{default_port}"


def offered_protocols(request: web.Request) -> list[str]:
    """The subprotocols the client offered, in its order."""
    header = request.headers.get("Sec-WebSocket-Protocol", "")
    return [p.strip() for p in header.split(",") if p.strip()]


def read_handshake(request: web.Request, settings: GatewaySettings) -> Handshake:
    """The token: `Authorization`, else a `bearer.<token>` subprotocol, else `?token=`."""
    offered = offered_protocols(request)
    bearer_protocol = next((p for p in offered if p.startswith(BEARER_PREFIX)), None)
    # Echo our protocol when offered, else the bearer one (a client must get back what it offered).
    protocol = APP_PROTOCOL if APP_PROTOCOL in offered else bearer_protocol
    header_token = bearer_token(request.headers.get("Authorization"))
    if header_token is not None:
        return Handshake(header_token, "header", protocol)
    if bearer_protocol is not None:
        return Handshake(bearer_protocol[len(BEARER_PREFIX) :], "subprotocol", protocol)
    query_token = request.query.get("token")
    if query_token:
        if settings.ws_query_token_enabled:
            return Handshake(query_token, "query", protocol)
        log.warning("ws_query_token_ignored")
    return Handshake(None, None, protocol)
