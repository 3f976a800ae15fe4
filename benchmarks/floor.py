"""Memory floors measured in a fresh process: a client holding raw model streams, a bare WS server.

`python -m benchmarks.floor streams --url FAKE --n N` prints `{"kib_per_stream": x}`;
`python -m benchmarks.floor ws-server` prints `{"url": ...}` and holds idle WebSockets until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys

import aiohttp
from aiohttp import web

from benchmarks.config import S3_MESSAGE
from benchmarks.load import StreamResult, connector, fake_stream
from benchmarks.procs import read_sample


async def _hold(session: aiohttp.ClientSession, url: str, n: int, settle_s: float) -> int:
    opened = 0
    ready = asyncio.Event()

    def first(_: StreamResult) -> None:
        nonlocal opened
        opened += 1
        if opened == n:
            ready.set()

    tasks = [asyncio.create_task(fake_stream(session, url, S3_MESSAGE, first)) for _ in range(n)]
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max(30.0, n / 10)):
            await ready.wait()
    await asyncio.sleep(settle_s)
    rss = read_sample(os.getpid()).rss
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return rss


async def streams(url: str, n: int, settle_s: float) -> float:
    """KiB of this process's RSS per open stream read straight from the fake."""
    async with aiohttp.ClientSession(connector=connector()) as session:
        await _hold(session, url, max(2, n // 10), settle_s)
        before = read_sample(os.getpid()).rss
        after = await _hold(session, url, n, settle_s)
    return round((after - before) / n / 1024, 2)


async def ws_server() -> None:
    """Accept WebSockets and hold them idle: the least a WebSocket server can keep per socket."""

    async def handle(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        async for _ in ws:
            pass
        return ws

    app = web.Application()
    app.router.add_get("/ws", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    sys.stdout.write(json.dumps({"url": f"http://127.0.0.1:{port}"}) + "\n")
    sys.stdout.flush()
    await asyncio.Event().wait()


def main() -> None:
    """Command line entry."""
    parser = argparse.ArgumentParser(prog="benchmarks.floor")
    sub = parser.add_subparsers(dest="mode", required=True)
    st = sub.add_parser("streams")
    st.add_argument("--url", required=True)
    st.add_argument("--n", type=int, required=True)
    st.add_argument("--settle", type=float, default=2.0)
    sub.add_parser("ws-server")
    args = parser.parse_args()
    if args.mode == "streams":
        kib = asyncio.run(streams(args.url, args.n, args.settle))
        sys.stdout.write(json.dumps({"kib_per_stream": kib}) + "\n")
    else:
        asyncio.run(ws_server())


if __name__ == "__main__":
    main()
