"""Resumable runs: a client that lost its connection gets the rest of its answer, from the same
run (no second agent call), on the same gateway or another one sharing Redis; never another
tenant's run."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import aiohttp
import pytest
from support.gateway_harness import (
    FakeUpstream,
    Gate,
    gateway_settings,
    read_sse,
    running_gateway,
    sql_answer,
    ui_events,
)

from contracts.agent_api import TokenEvent


def gated_answer(gate: asyncio.Event) -> list[Any]:
    """A data answer that pauses after its first answer token until `gate` opens."""
    script = sql_answer(words=("There", " are", " 4."))
    first = next(
        i for i, s in enumerate(script) if isinstance(s, TokenEvent) and s.channel == "final"
    )
    return [*script[: first + 1], Gate(gate), *script[first + 1 :]]


async def cut_after_first_token(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str]
) -> tuple[str, int]:
    """Start a run over SSE, read up to its first answer token, then drop the connection; the
    run id and the last event id seen."""
    resp = await session.post(f"{url}/api/chat/stream", json={"message": "hi"}, headers=headers)
    assert resp.status == 200
    run_id = resp.headers["X-Run-Id"]
    last_id = 0
    buffer = b""
    while b"event: token" not in buffer:
        buffer += await resp.content.readany()
    for frame in buffer.split(b"\n\n"):
        for line in frame.split(b"\n"):
            if line.startswith(b"id: ") and b"event: token" in frame:
                last_id = int(line[4:])
                break
        if last_id:
            break
    resp.close()  # the connection is cut mid-answer
    return run_id, last_id


async def resume(
    session: aiohttp.ClientSession, url: str, run_id: str, after: int, headers: dict[str, str]
) -> tuple[int, list[dict[str, Any]], list[int]]:
    async with session.get(
        f"{url}/api/chat/runs/{run_id}/stream", headers={**headers, "Last-Event-ID": str(after)}
    ) as resp:
        if resp.status != 200:
            return resp.status, [await resp.json()], []
        frames = await read_sse(resp)
    return 200, ui_events(frames), [int(f.id) for f in frames if f.id]


async def test_a_cut_connection_resumes_after_last_event_id_without_a_second_run(
    upstream: FakeUpstream,
) -> None:
    gate = asyncio.Event()
    upstream.script = gated_answer(gate)
    async with running_gateway(gateway_settings(upstream.url)) as gw, aiohttp.ClientSession() as s:
        run_id, last_id = await cut_after_first_token(s, gw.url, gw.auth())
        gate.set()  # the answer goes on without its client
        status, events, ids = await resume(s, gw.url, run_id, last_id, gw.auth())
    assert status == 200
    assert ids[0] == last_id + 1  # numbering goes on where the client was
    answer = "".join(e["token"] for e in events if e["type"] == "token")
    assert answer == " are 4."
    assert events[-1]["type"] == "complete" and events[-1]["response"] == "There are 4."
    assert len(upstream.streams()) == 1  # one model call


async def test_another_tenant_cannot_resume_or_stop_a_run(upstream: FakeUpstream) -> None:
    gate = asyncio.Event()
    upstream.script = gated_answer(gate)
    async with running_gateway(gateway_settings(upstream.url)) as gw, aiohttp.ClientSession() as s:
        run_id, _ = await cut_after_first_token(s, gw.url, gw.auth())
        other_company = gw.auth("u-bob", "bluepeak-plumbing")
        other_user = gw.auth("u-carol", "acme-hvac")
        for headers in (other_company, other_user):
            status, body, _ = await resume(s, gw.url, run_id, 0, headers)
            assert status == 404 and body[0]["error"]["code"] == "NOT_FOUND"
            async with s.post(f"{gw.url}/api/chat/runs/{run_id}/stop", headers=headers) as r:
                assert r.status == 404
            # The AI SDK's resume of the same chat id finds nothing of theirs.
            async with s.get(f"{gw.url}/api/chat/conv-1/stream", headers=headers) as r:
                assert r.status == 204
        async with s.ws_connect(gw.ws_url, headers=other_company) as ws:
            assert (await ws.receive_json())["type"] == "auth_success"
            await ws.send_json({"type": "resume", "run_id": run_id})
            refused = await ws.receive_json()
        assert (refused["type"], refused["code"]) == ("error", "NOT_FOUND")
        gate.set()
        status, events, _ = await resume(s, gw.url, run_id, 0, gw.auth())
    assert status == 200 and events[-1]["type"] == "complete"


async def test_the_ai_sdk_resume_replays_the_run_in_progress(upstream: FakeUpstream) -> None:
    gate = asyncio.Event()
    upstream.script = gated_answer(gate)
    body = {
        "id": "conv-1",
        "messages": [{"role": "user", "parts": [{"type": "text", "text": "hi"}]}],
    }
    async with running_gateway(gateway_settings(upstream.url)) as gw, aiohttp.ClientSession() as s:
        first = await s.post(f"{gw.url}/api/chat", json=body, headers=gw.auth())
        while b"text-delta" not in await first.content.readany():
            pass
        first.close()  # the page reloads
        resumed = await s.get(f"{gw.url}/api/chat/conv-1/stream", headers=gw.auth())
        gate.set()
        text = await resumed.text()
        async with s.get(f"{gw.url}/api/chat/conv-1/stream", headers=gw.auth()) as after:
            assert after.status == 204  # ended: the answer is in the history now
    parts = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]
    assert parts[0]["type"] == "start"
    assert "".join(p["delta"] for p in parts if p["type"] == "text-delta") == "There are 4."
    assert text.rstrip().endswith("data: [DONE]")
    assert len(upstream.streams()) == 1


async def test_a_websocket_resumes_and_stop_still_cancels(upstream: FakeUpstream) -> None:
    gate = asyncio.Event()
    upstream.script = gated_answer(gate)
    async with running_gateway(gateway_settings(upstream.url)) as gw, aiohttp.ClientSession() as s:
        async with s.ws_connect(gw.ws_url, headers=gw.auth()) as ws:
            await ws.receive_json()  # auth_success
            await ws.send_json({"type": "message", "message": "hi"})
            seen: list[dict[str, Any]] = []
            while not seen or seen[-1]["type"] != "token":
                seen.append(await ws.receive_json())
        run_id = seen[0]["message_id"]
        async with s.ws_connect(gw.ws_url, headers=gw.auth()) as ws:
            await ws.receive_json()
            await ws.send_json({"type": "resume", "run_id": run_id, "after": len(seen)})
            first = await ws.receive_json()
            await ws.send_json({"type": "stop"})
            rest = [first]
            while rest[-1]["type"] not in ("complete", "error"):
                rest.append(await ws.receive_json())
        async with asyncio.timeout(10):
            await upstream.disconnected.wait()  # stop ended the run itself
    assert rest[-1]["code"] == "CANCELLED"


@pytest.mark.redis
async def test_a_run_started_on_one_gateway_resumes_on_another(upstream: FakeUpstream) -> None:
    gate = asyncio.Event()
    upstream.script = gated_answer(gate)
    settings = gateway_settings(
        upstream.url,
        redis_url="redis://127.0.0.1:6379/0",
        redis_prefix=f"test-resume-{uuid.uuid4().hex[:8]}",
        resume_flush_ms=20,
    )
    async with (
        running_gateway(settings) as first,
        running_gateway(settings) as second,
        aiohttp.ClientSession() as s,
    ):
        run_id, last_id = await cut_after_first_token(s, first.url, first.auth())
        other = await resume(s, second.url, run_id, 0, second.auth("u-bob", "bluepeak-plumbing"))
        assert other[0] == 404
        resumed = asyncio.create_task(resume(s, second.url, run_id, last_id, second.auth()))
        gate.set()
        status, events, ids = await resumed
    assert status == 200 and ids[0] == last_id + 1
    assert events[-1]["type"] == "complete" and events[-1]["response"] == "There are 4."
    assert "".join(e["token"] for e in events if e["type"] == "token") == " are 4."
    assert len(upstream.streams()) == 1
