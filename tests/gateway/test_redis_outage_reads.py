"""Redis down (issue 11.10): conversation reads keep working under this replica's own limits;
chat and deletes fail closed with 503, as docs/operations.md says."""

from __future__ import annotations

import socket
from typing import Any

import aiohttp
from support.gateway_harness import FakeUpstream, gateway_settings, running_gateway


def closed_port() -> int:
    """A local port nobody listens on: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_reads_are_served_under_local_limits_while_redis_is_down(
    upstream: FakeUpstream,
) -> None:
    settings = gateway_settings(
        upstream.url,
        redis_url=f"redis://127.0.0.1:{closed_port()}/0",
        redis_timeout_s=0.2,
        limit_user_conversation_requests=2,
    )
    async with running_gateway(settings) as gw, aiohttp.ClientSession() as s:
        reads = []
        body: dict[str, Any] = {}
        for path in ("/api/conversations", "/api/conversations/conv-known", "/api/conversations"):
            async with s.get(f"{gw.url}{path}", headers=gw.auth()) as r:
                reads.append((r.status, r.headers.get("RateLimit", "")))
                body = await r.json()
        async with s.delete(f"{gw.url}/api/conversations/conv-known", headers=gw.auth()) as r:
            delete = (r.status, (await r.json())["error"]["code"])
        async with s.post(
            f"{gw.url}/api/chat/stream", json={"message": "hi"}, headers=gw.auth()
        ) as r:
            chat = (r.status, (await r.json())["error"]["code"])
    assert [status for status, _ in reads] == [200, 200, 429]
    assert '"user-requests";r=1;' in reads[0][1]  # the local window's numbers
    assert body["error"]["code"] == "RATE_LIMITED"
    assert delete == (503, "UPSTREAM_UNAVAILABLE")
    assert chat == (503, "UPSTREAM_UNAVAILABLE")
    assert len(upstream.requests) == 2  # the two admitted reads only
