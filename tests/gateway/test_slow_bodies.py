"""Slow request bodies (issue 11.9): a body read deadline, and admission before the body."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from support.gateway_harness import FakeUpstream, Gateway, gateway_settings, running_gateway

ROUTES = [
    "/api/chat/stream",
    "/api/chat/complete",
    "/api/chat",
    "/api/agui",
    "/v1/chat/completions",
]


class _ResetIsClose(asyncio.StreamReader):
    """A reader for which a reset is the server's close: a client still sending body bytes
    after the server answered and closed gets an RST, which must not discard the answer
    already received (the 408 the tests read)."""

    def set_exception(self, exc: Exception) -> None:
        if isinstance(exc, ConnectionResetError):
            self.feed_eof()
            return
        super().set_exception(exc)


async def send_head(
    gw: Gateway, path: str, *, length: int, token: str | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a connection and send a POST's head only (no body yet)."""
    host, port = gw.url.removeprefix("http://").split(":")
    loop = asyncio.get_running_loop()
    reader = _ResetIsClose(loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    transport, _ = await loop.create_connection(lambda: protocol, host, int(port))
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    writer.write(
        (
            f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"{auth}Content-Length: {length}\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    return reader, writer


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, object], bytes]:
    """Status, JSON body and the rest of the connection until the server closes it."""
    raw = await asyncio.wait_for(reader.read(), 20)
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body) if body.startswith(b"{") else {}, raw


@pytest.mark.parametrize("path", ROUTES)
async def test_a_body_sent_one_byte_at_a_time_gets_408_and_the_connection_closes(
    upstream: FakeUpstream, path: str
) -> None:
    settings = gateway_settings(upstream.url, body_read_timeout_s=0.5)
    async with running_gateway(settings) as gw:
        reader, writer = await send_head(gw, path, length=1000, token=gw.token())
        started = time.monotonic()

        async def trickle() -> None:
            for _ in range(1000):
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(0.05)

        dripping = asyncio.create_task(trickle())
        try:
            status, body, _ = await read_response(reader)  # read() returns at the server's close
        finally:
            dripping.cancel()
            writer.close()
        elapsed = time.monotonic() - started
    assert status == 408
    assert body["error"]["code"] == "INVALID_REQUEST"  # type: ignore[index]
    assert elapsed < 5, elapsed
    assert not upstream.requests


@pytest.mark.parametrize("path", ROUTES)
async def test_admission_comes_before_the_body(upstream: FakeUpstream, path: str) -> None:
    """A sender over its limit is refused on its headers alone; the body is never awaited."""
    settings = gateway_settings(upstream.url, limit_user_requests=1, body_read_timeout_s=30)
    async with running_gateway(settings) as gw:
        first_reader, first = await send_head(gw, path, length=1000, token=gw.token())
        second_reader, second = await send_head(gw, path, length=1000, token=gw.token())
        try:
            status, body, _ = await read_response(second_reader)
        finally:
            first.close()
            second.close()
    assert status == 429
    assert body["error"]["code"] == "RATE_LIMITED"  # type: ignore[index]
    assert not upstream.requests
    del first_reader


async def test_an_unauthenticated_body_is_never_read(upstream: FakeUpstream) -> None:
    settings = gateway_settings(upstream.url, body_read_timeout_s=30)
    async with running_gateway(settings) as gw:
        reader, writer = await send_head(gw, "/api/chat/stream", length=1000, token=None)
        try:
            status, body, _ = await read_response(reader)
        finally:
            writer.close()
    assert status == 401
    assert body["error"]["code"] == "UNAUTHORIZED"  # type: ignore[index]
