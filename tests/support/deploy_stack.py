"""Deploy test helpers: scripts/topology.py as a module, free ports, calls through a gateway.

The real-server tests run the same topology as `make prod-local` (the same code), on free ports,
with a throwaway database and Redis key prefix, so they never touch a developer's running stack.
"""

from __future__ import annotations

import importlib.util
import re
import secrets
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import pytest

from gateway.auth import mint_dev_token
from gateway.settings import GatewaySettings

ROOT = Path(__file__).resolve().parents[2]
COMPANY = "acme-hvac"
USER_LIMIT = 10
"""Requests per user per window on the session stack's gateways (small, so tests reach it)."""
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_DOWN = (
    f"Redis not reachable at {REDIS_HOST}:{REDIS_PORT} — start it with: "
    f'redis-server --daemonize yes --bind 127.0.0.1 --port {REDIS_PORT} --save "" --appendonly no'
)


def load_topology() -> ModuleType:
    """scripts/topology.py as the module `topology` (scripts/ is not a package)."""
    if "topology" in sys.modules:
        return sys.modules["topology"]
    spec = importlib.util.spec_from_file_location("topology", ROOT / "scripts" / "topology.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["topology"] = module  # dataclasses resolve their module while being built
    spec.loader.exec_module(module)
    return module


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free right now on 127.0.0.1."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def redis_pong(port: int = REDIS_PORT) -> bool:
    try:
        with socket.create_connection((REDIS_HOST, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def require_redis() -> None:
    """Fail (never skip) with the command that starts Redis when it does not answer."""
    if not redis_pong():
        pytest.fail(REDIS_DOWN, pytrace=False)


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def user_token(config: Any, user_id: str, company_id: str = COMPANY) -> str:
    """A user token for any user id, signed with the topology `config`'s user-token key (the
    gateways run in production mode on keys made for the run)."""
    settings = GatewaySettings(
        env="production",
        internal_key=config.internal_key,
        jwt_hs256_secret=config.user_token_secret,
    )
    return mint_dev_token(settings.jwt_config(), user_id=user_id, company_id=company_id, ttl_s=900)


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    token: str,
    body: dict[str, Any] | None = None,
) -> Reply:
    """One JSON call to a gateway, as the user of `token`."""
    async with http.request(
        method, url, json=body, headers={"Authorization": f"Bearer {token}"}
    ) as resp:
        data = await resp.json(content_type=None) if resp.content_length != 0 else {}
        return Reply(resp.status, data if isinstance(data, dict) else {}, dict(resp.headers))


async def ask(
    http: aiohttp.ClientSession, gateway: str, token: str, message: str, conversation: str
) -> Reply:
    """One turn through `POST /api/chat/complete`."""
    body = {"message": message, "conversation_id": conversation}
    return await call(http, "POST", f"{gateway}/api/chat/complete", token, body)


_COUNTER = re.compile(
    r'^agent_http_requests_total\{route="(\w+)",status="\d+"\} ([0-9.e+]+)$', re.M
)
_WORK_ROUTES = {"chat", "chat_stream", "list_conversations", "get_conversation"}


async def work_served(http: aiohttp.ClientSession, agent_url: str) -> int:
    """Calls an agent replica has served on its work routes (health checks not counted)."""
    async with http.get(f"{agent_url}/metrics") as resp:
        text = await resp.text()
    return sum(int(float(n)) for route, n in _COUNTER.findall(text) if route in _WORK_ROUTES)


async def served_by(http: aiohttp.ClientSession, agent_urls: list[str], before: list[int]) -> int:
    """Index of the one agent replica whose work count grew since `before`."""
    after = [await work_served(http, url) for url in agent_urls]
    grew = [i for i, (a, b) in enumerate(zip(after, before, strict=True)) if a > b]
    assert len(grew) == 1, f"expected exactly one replica to serve the call: {before} -> {after}"
    return grew[0]


def redis_cli(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["redis-cli", "-h", REDIS_HOST, "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
