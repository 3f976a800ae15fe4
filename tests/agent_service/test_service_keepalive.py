"""A client that stops reading at the terminal event can reuse its connection for the next run."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
from support.servers import serve_asgi

from agent_service.app import create_app
from agent_service.settings import AgentSettings
from contracts.sse import SSEDecoder

Mint = Callable[..., str]


async def test_the_terminal_event_arrives_with_the_end_of_the_body(
    make_settings: Callable[..., AgentSettings], mint: Mint
) -> None:
    created = reused = 0

    async def on_create(*_: object) -> None:
        nonlocal created
        created += 1

    async def on_reuse(*_: object) -> None:
        nonlocal reused
        reused += 1

    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(on_create)
    trace.on_connection_reuseconn.append(on_reuse)
    body = {
        "input": {"message": "How many technicians are active?"},
        "conversation": {"id": "conv-1", "user_id": "u-alice", "company_id": "acme-hvac"},
    }
    async with (
        serve_asgi(create_app(make_settings())) as url,
        aiohttp.ClientSession(trace_configs=[trace]) as session,
    ):
        for _ in range(2):
            async with session.post(
                f"{url}/internal/chat/stream",
                json=body,
                headers={"Authorization": f"Bearer {mint()}"},
            ) as resp:
                decoder = SSEDecoder()
                names: list[str] = []
                while "complete" not in names:
                    chunk = await resp.content.readany()
                    assert chunk, "the body ended before the terminal event"
                    names += [m.event for m in decoder.feed(chunk)]
                # what a relay does once it has the terminal event: nothing more is read
                assert resp.content.at_eof()
                resp.release()
    assert (created, reused) == (1, 1)
