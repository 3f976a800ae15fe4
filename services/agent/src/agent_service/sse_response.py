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

import structlog
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from agent_service.runs.sse import FinalBytes

log = structlog.get_logger("agent_service.sse_response")


class EventStreamResponse(Response):
    """An ASGI response streaming `body` as SSE; a client that leaves cancels the body.

    One timer per stream: a `heartbeat` comment goes out (from a short-lived task) when nothing
    was written for `heartbeat_s`, and a write still blocked after `stall_s` (a client that does
    not read) ends the response, which closes the body and so stops the run."""

    media_type = "text/event-stream"

    def __init__(
        self,
        body: AsyncIterator[bytes],
        headers: Mapping[str, str],
        *,
        heartbeat: bytes = b"",
        heartbeat_s: float = 0.0,
        stall_s: float = 0.0,
    ) -> None:
        # Response's own __init__ renders a body; this one streams, so only what Starlette reads
        self.stream = body
        self.status_code = 200
        self.background = None
        self.raw_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()),
        ]
        self._heartbeat = heartbeat
        self._heartbeat_s = heartbeat_s if heartbeat else 0.0
        self._stall_s = stall_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: ARG002
        writer = asyncio.current_task()
        assert writer is not None
        loop = asyncio.get_running_loop()
        left = stalled = finished = False
        last_write = loop.time()
        writing_since: float | None = None
        beat: asyncio.Task[None] | None = None
        timer: asyncio.TimerHandle | None = None
        heartbeat_s, stall_s = self._heartbeat_s, self._stall_s

        async def watch() -> None:
            nonlocal left
            while (await receive())["type"] != "http.disconnect":
                pass
            if not finished:
                left = True
                writer.cancel()

        async def send_heartbeat() -> None:
            nonlocal last_write
            await send({"type": "http.response.body", "body": self._heartbeat, "more_body": True})
            last_write = loop.time()

        def tick() -> None:
            nonlocal timer, stalled, beat, last_write
            timer = None
            if finished:
                return
            now = loop.time()
            if writing_since is not None and stall_s and now - writing_since >= stall_s:
                stalled = True
                writer.cancel()
                return
            idle = writing_since is None and now - last_write >= heartbeat_s
            if heartbeat_s and idle and (beat is None or beat.done()):
                last_write = now
                beat = asyncio.create_task(send_heartbeat())
            due = [last_write + heartbeat_s] if heartbeat_s else []
            if writing_since is not None and stall_s:
                due.append(writing_since + stall_s)
            # a write started after this arming is checked at the latest one stall later
            due.append(now + stall_s if stall_s else now + heartbeat_s)
            timer = loop.call_at(max(min(due), now + 0.01), tick)

        watcher = asyncio.create_task(watch())
        if heartbeat_s or stall_s:
            tick()
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            last = b""
            async for chunk in self.stream:
                if type(chunk) is FinalBytes:
                    last = chunk  # the body ends right after it: its finally runs in this loop
                    continue
                writing_since = loop.time()
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                last_write = loop.time()
                writing_since = None
            finished = True
            if beat is not None and not beat.done():
                await beat  # its frame goes out whole before the end
            await send({"type": "http.response.body", "body": last, "more_body": False})
        except asyncio.CancelledError:
            if not (left or stalled) or writer.uncancel() > 0:
                raise
            # our own cancel: the client is gone, or stopped reading; the response simply ends
            if stalled:
                log.warning("stream_stalled", stall_s=stall_s)
        finally:
            finished = True
            if timer is not None:
                timer.cancel()
            for task in (watcher, beat):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            aclose = getattr(self.stream, "aclose", None)
            if aclose is not None:
                await aclose()  # a no-op once the body ended; else its cleanup stops the run
