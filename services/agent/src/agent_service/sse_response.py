"""`EventStreamResponse`: a streamed `text/event-stream` body without a task group.

Starlette's `StreamingResponse` (under uvicorn's ASGI spec 2.3) runs the body and a disconnect
listener as two tasks in an anyio task group; finishing each response then costs anyio's cancel
scope delivery, which retries on every loop turn until the listener is gone. Here the request's
own task writes the body and a plain asyncio task waits for `http.disconnect`: when the client
leaves first it cancels the writer once, so the body's `finally` (which stops the run and its
model call) runs at the next await, as before. A `FinalBytes` chunk goes out with the end of the
body in one write: the client reads the terminal event and the body's end together, so it can
return the connection to its pool instead of closing it (and opening a new one next time).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from agent_service.runs.sse import FinalBytes


class EventStreamResponse(Response):
    """An ASGI response streaming `body` as SSE; a client that leaves cancels the body."""

    media_type = "text/event-stream"

    def __init__(self, body: AsyncIterator[bytes], headers: Mapping[str, str]) -> None:
        # Response's own __init__ renders a body; this one streams, so only what Starlette reads
        self.stream = body
        self.status_code = 200
        self.background = None
        self.raw_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: ARG002
        writer = asyncio.current_task()
        assert writer is not None
        left = False
        finished = False

        async def watch() -> None:
            nonlocal left
            while (await receive())["type"] != "http.disconnect":
                pass
            if not finished:
                left = True
                writer.cancel()

        watcher = asyncio.create_task(watch())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            last = b""
            async for chunk in self.stream:
                if type(chunk) is FinalBytes:
                    last = chunk  # the body ends right after it: its finally runs in this loop
                    continue
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            finished = True
            await send({"type": "http.response.body", "body": last, "more_body": False})
        except asyncio.CancelledError:
            if not left:
                raise
            writer.uncancel()  # our own cancel: the client is gone, the response simply ends
        finally:
            finished = True
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            aclose = getattr(self.stream, "aclose", None)
            if aclose is not None:
                await aclose()  # a no-op once the body ended; else its cleanup stops the run
