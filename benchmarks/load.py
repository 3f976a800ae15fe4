"""The asyncio load client: one stream read directly from the fake, or through the gateway."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

MODEL_PATH = "/v1/chat/completions"


@dataclass(slots=True)
class StreamResult:
    """What one client saw of one stream: when tokens came, and how it ended."""

    started: float = 0.0
    first_token: float | None = None
    last_token: float | None = None
    tokens: int = 0
    gaps: list[float] = field(default_factory=list)
    error: str | None = None
    completed: bool = False

    @property
    def ttft_s(self) -> float | None:
        """Request sent → first answer token read."""
        return None if self.first_token is None else self.first_token - self.started

    def token(self, now: float) -> None:
        """Record one answer token read at `now`."""
        if self.first_token is None:
            self.first_token = now
        else:
            assert self.last_token is not None
            self.gaps.append(now - self.last_token)
        self.last_token = now
        self.tokens += 1

    def observe(self, event: dict[str, Any], on_first: Callable[[StreamResult], None]) -> bool:
        """Record one gateway UI event; True when it ended the stream."""
        kind = event.get("type")
        if kind == "token":
            self.token(time.perf_counter())
            if self.tokens == 1:
                on_first(self)
        elif kind == "complete":
            self.completed = True
            return True
        elif kind == "error":
            self.error = str(event.get("code"))
            return True
        return False

    def finish(self) -> StreamResult:
        """A stream that ended without `complete` or `error` was cut."""
        if not self.completed and self.error is None:
            self.error = "cut"
        return self


OnToken = Callable[[StreamResult], None]


def _noop(_: StreamResult) -> None:
    return None


def connector(limit: int = 0) -> aiohttp.TCPConnector:
    """No pool cap (aiohttp's default of 100 would queue the bench's own requests)."""
    return aiohttp.TCPConnector(limit=limit, force_close=False)


async def dev_token(session: aiohttp.ClientSession, gateway_url: str) -> str:
    """A development user token from the gateway (u-alice of acme-hvac)."""
    async with session.post(
        f"{gateway_url}/auth/dev-token", json={"user_id": "u-alice", "company_id": "acme-hvac"}
    ) as resp:
        resp.raise_for_status()
        body = await resp.json()
        token: str = body["token"]
        return token


async def fake_stream(
    session: aiohttp.ClientSession, fake_url: str, message: str, on_first: OnToken = _noop
) -> StreamResult:
    """The raw floor: read a streamed completion from the fake, parsing every chunk's JSON."""
    result = StreamResult(started=time.perf_counter())
    body = {
        "model": "fake-model",
        "messages": [{"role": "user", "content": message}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 32768,
    }
    try:
        async with session.post(fake_url + MODEL_PATH, json=body) as resp:
            if resp.status != 200:
                result.error = f"HTTP {resp.status}"
                return result
            async for line in resp.content:
                if not line.startswith(b"data: "):
                    continue
                data = line[6:].strip()
                if data == b"[DONE]":
                    result.completed = True
                    break
                chunk: dict[str, Any] = json.loads(data)
                choices = chunk.get("choices") or ()
                if choices and choices[0]["delta"].get("content"):
                    result.token(time.perf_counter())
                    if result.tokens == 1:
                        on_first(result)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        result.error = type(exc).__name__
    if not result.completed and result.error is None:
        result.error = "cut"
    return result


async def sse_stream(
    session: aiohttp.ClientSession,
    gateway_url: str,
    token: str,
    message: str,
    on_first: OnToken = _noop,
) -> StreamResult:
    """One turn over `POST /api/chat/stream`, parsing every event's JSON."""
    result = StreamResult(started=time.perf_counter())
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with session.post(
            f"{gateway_url}/api/chat/stream", json={"message": message}, headers=headers
        ) as resp:
            if resp.status != 200:
                result.error = f"HTTP {resp.status}"
                return result
            async for line in resp.content:
                if not line.startswith(b"data: "):
                    continue
                if result.observe(json.loads(line[6:]), on_first):
                    break
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        result.error = type(exc).__name__
    return result.finish()


async def ws_connect(
    session: aiohttp.ClientSession, gateway_url: str, token: str
) -> aiohttp.ClientWebSocketResponse:
    """An authenticated `/ws/chat` socket (bearer header; `auth_success` already read)."""
    ws = await session.ws_connect(
        gateway_url.replace("http", "ws", 1) + "/ws/chat",
        headers={"Authorization": f"Bearer {token}"},
        autoping=True,
        heartbeat=None,
    )
    first = await ws.receive_json(timeout=30)
    if first.get("type") != "auth_success":
        await ws.close()
        raise RuntimeError(f"WebSocket auth failed: {first!r}")
    return ws


async def ws_turn(
    ws: aiohttp.ClientWebSocketResponse, message: str, on_first: OnToken = _noop
) -> StreamResult:
    """One turn on an authenticated socket, parsing every message's JSON."""
    result = StreamResult(started=time.perf_counter())
    try:
        await ws.send_str(json.dumps({"type": "message", "message": message}))
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                result.error = f"ws {msg.type.name}"
                break
            if result.observe(json.loads(msg.data), on_first):
                break
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        result.error = type(exc).__name__
    return result.finish()


async def ws_stream(
    session: aiohttp.ClientSession,
    gateway_url: str,
    token: str,
    message: str,
    on_first: OnToken = _noop,
) -> StreamResult:
    """Connect, run one turn, close; the clock starts when the message is sent."""
    try:
        ws = await ws_connect(session, gateway_url, token)
    except (aiohttp.ClientError, OSError, TimeoutError, RuntimeError) as exc:
        return StreamResult(started=time.perf_counter(), error=f"connect {type(exc).__name__}")
    try:
        return await ws_turn(ws, message, on_first)
    finally:
        await ws.close()


async def staggered(factories: list[Callable[[], Any]], over_s: float) -> list[Any]:
    """Start each coroutine factory, spread evenly over `over_s`, and wait for them all."""
    tasks: list[asyncio.Task[Any]] = []
    step = over_s / len(factories) if factories and over_s > 0 else 0.0
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for i, make in enumerate(factories):
        if step:
            delay = t0 + i * step - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(make()))
    return list(await asyncio.gather(*tasks))
