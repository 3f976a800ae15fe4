"""Sending one response over ASGI: pacing, batching, injected faults, noticing a client leave."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from starlette.types import Receive, Send

from fake_openai.knobs import Fault, Pace
from fake_openai.wire import Frame, error_body, error_frame


@dataclass(slots=True)
class Delivery:
    """A response ready to go: SSE `frames`, or a JSON `body` when not streaming."""

    headers: list[tuple[bytes, bytes]]
    frames: list[Frame] | None
    body: bytes
    pace: Pace
    fault: Fault | None
    batch_bytes: int
    closing: asyncio.Event
    completion_tokens: int = 0
    frames_sent: int = 0


async def _until_disconnect(receive: Receive) -> None:
    # The request body has been read already, so the next message is the disconnect.
    while (await receive())["type"] != "http.disconnect":
        pass


async def _sleep_until(loop: asyncio.AbstractEventLoop, due: float) -> None:
    delay = due - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)


async def _send_stream(delivery: Delivery, send: Send) -> None:
    frames = delivery.frames or []
    fault = delivery.fault
    pace = delivery.pace
    await send({"type": "http.response.start", "status": 200, "headers": delivery.headers})
    loop = asyncio.get_running_loop()
    if pace.ttft_ms > 0:
        await asyncio.sleep(pace.ttft_ms / 1000)
    todo = frames if fault is None else frames[: fault.after_chunks]
    finishing = fault is None
    if pace.tps <= 0 and delivery.batch_bytes > 0:
        # As fast as possible: many frames per write, the cheapest path for load tests.
        batch: list[bytes] = []
        size = 0
        for frame in todo:
            batch.append(frame.data)
            size += len(frame.data)
            if size >= delivery.batch_bytes:
                await send(
                    {"type": "http.response.body", "body": b"".join(batch), "more_body": True}
                )
                delivery.frames_sent += len(batch)
                batch, size = [], 0
        await send(
            {"type": "http.response.body", "body": b"".join(batch), "more_body": not finishing}
        )
        delivery.frames_sent += len(batch)
    else:
        start = loop.time()
        tokens = 0
        for frame in todo:
            if pace.tps > 0:
                await _sleep_until(loop, start + tokens / pace.tps)
            await send({"type": "http.response.body", "body": frame.data, "more_body": True})
            delivery.frames_sent += 1
            tokens += frame.tokens
        if finishing:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    if fault is None:
        return
    if fault.mode == "error_event":
        body = error_frame(fault.message, type=fault.type, code=fault.code)
        await send({"type": "http.response.body", "body": body, "more_body": False})
    elif fault.mode == "raw":
        body = b"data: " + fault.data.encode() + b"\n\ndata: [DONE]\n\n"
        await send({"type": "http.response.body", "body": body, "more_body": False})
    elif fault.mode == "hang":
        await delivery.closing.wait()
    # "drop" (and a hang released by shutdown) returns with the body incomplete: the server closes
    # the connection mid-body, which the client sees as a broken stream.


async def _send_whole(delivery: Delivery, send: Send) -> None:
    pace = delivery.pace
    fault = delivery.fault
    wait = pace.ttft_ms / 1000
    if pace.tps > 0:
        wait += delivery.completion_tokens / pace.tps
    if wait > 0:
        await asyncio.sleep(wait)
    if fault is not None and fault.mode == "hang":
        await delivery.closing.wait()
        return
    if fault is not None and fault.mode == "error_event":
        body = error_body(fault.message, type=fault.type, code=fault.code)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": fault.status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})
        return
    body = delivery.body
    headers = delivery.headers
    if fault is not None and fault.mode == "raw":
        body = fault.data.encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if fault is None or fault.mode == "raw":
        await send({"type": "http.response.body", "body": body, "more_body": False})


async def deliver(delivery: Delivery, receive: Receive, send: Send) -> bool:
    """Send `delivery`; return False if the client disconnected before it was finished."""
    sender = _send_stream if delivery.frames is not None else _send_whole
    writer = asyncio.ensure_future(sender(delivery, send))
    watcher = asyncio.ensure_future(_until_disconnect(receive))
    try:
        await asyncio.wait((writer, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not writer.done():
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
    if writer.cancelled():
        return False
    writer.result()
    return True
