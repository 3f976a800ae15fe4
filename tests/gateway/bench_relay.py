"""CPU the gateway adds per token, per transport (not collected by pytest).

Run: `PYTHONPATH=tests uv run python tests/gateway/bench_relay.py`. A scripted fake agent
streams N tokens; the same stream is read once directly from the fake and once through each
gateway endpoint, all in this process. The difference in process CPU time, per token, is what
the gateway adds (the agent-side decode by `AgentClient`, mapping, encoding, writing, and the
extra hop's socket work). `--paced` inserts a 1 ms pause per token so each travels alone (no
batching), like a live model.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import aiohttp
from support.gateway_harness import (
    Sleep,
    Step,
    fake_upstream,
    gateway_settings,
    running_gateway,
    stats,
)

from contracts.agent_api import CompleteEvent, TokenEvent

N = 20_000


async def drain(session: aiohttp.ClientSession, url: str, body: Any, headers: Any) -> float:
    start = time.process_time()
    async with session.post(url, json=body, headers=headers) as resp:
        async for _ in resp.content.iter_any():
            pass
    return time.process_time() - start


async def main(paced: bool) -> None:
    """Print µs of CPU per token: direct, and added by each gateway endpoint."""
    n = N // 10 if paced else N
    script: list[Step] = []
    for _ in range(n):
        script.append(TokenEvent(channel="final", content=" word"))
        if paced:
            script.append(Sleep(0.001))
    script.append(CompleteEvent(stats=stats(tokens=n)))
    internal = {
        "input": {"message": "hi"},
        "conversation": {"id": "c1", "user_id": "u", "company_id": "c"},
    }
    use_chat = {
        "id": "c1",
        "messages": [{"role": "user", "parts": [{"type": "text", "text": "hi"}]}],
    }
    async with fake_upstream() as upstream, aiohttp.ClientSession() as session:
        upstream.script = script
        direct = min(
            [
                await drain(session, f"{upstream.url}/internal/chat/stream", internal, {})
                for _ in range(2)
            ]
        )
        print(f"direct from the fake agent: {direct / n * 1e6:7.1f} µs/token")  # noqa: T201
        async with running_gateway(gateway_settings(upstream.url)) as gw:
            for path, body in [
                ("/api/chat/stream", {"message": "hi"}),
                ("/api/chat", use_chat),
            ]:
                spent = min(
                    [await drain(session, gw.url + path, body, gw.auth()) for _ in range(2)]
                )
                added = (spent - direct) / n * 1e6
                print(f"{path:18} adds:        {added:7.1f} µs/token")  # noqa: T201


if __name__ == "__main__":
    asyncio.run(main(paced="--paced" in sys.argv))
