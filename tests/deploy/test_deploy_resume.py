"""Resume on the production-like topology: a connection cut mid-answer on one gateway replica is
resumed on the other (the run's events in a Redis Stream), the run finishes without its client,
once, and its answer is saved; another company's user cannot resume it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from support.deploy_stack import call, unique, user_token, work_served

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(240)]

QUESTION = "What is the overtime policy?"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


def frames(raw: bytes) -> list[tuple[int, dict[str, Any]]]:
    """The SSE frames of `raw` that carry an id: (id, UI event)."""
    out: list[tuple[int, dict[str, Any]]] = []
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        fields = dict(
            line.split(b": ", 1)
            for line in block.split(b"\n")
            if b": " in line and line[:1] != b":"
        )
        if b"id" in fields and b"data" in fields:
            out.append((int(fields[b"id"]), json.loads(fields[b"data"])))
    return out


async def start_and_cut(
    http: aiohttp.ClientSession, gateway: str, token: str, conversation: str
) -> tuple[str, list[tuple[int, dict[str, Any]]]]:
    """Start a run over SSE, read up to its first answer token, cut the connection: the run id
    and the frames received."""
    resp = await http.post(
        f"{gateway}/api/chat/stream",
        json={"message": QUESTION, "conversation_id": conversation},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert resp.status == 200, await resp.text()
    run_id = resp.headers["X-Run-Id"]
    raw = b""
    while not any(e["type"] == "token" for _, e in frames(raw)):
        chunk = await resp.content.readany()
        assert chunk, "the stream ended before its first token"
        raw += chunk
    resp.close()  # the connection is cut mid-answer
    got = frames(raw)
    first_token = next(i for i, e in got if e["type"] == "token")
    return run_id, [(i, e) for i, e in got if i <= first_token]  # the client kept up to there


async def resume(
    http: aiohttp.ClientSession, gateway: str, token: str, run_id: str, after: int
) -> tuple[int, list[tuple[int, dict[str, Any]]]]:
    async with http.get(
        f"{gateway}/api/chat/runs/{run_id}/stream",
        headers={"Authorization": f"Bearer {token}", "Last-Event-ID": str(after)},
    ) as resp:
        return resp.status, frames(await resp.read()) if resp.status == 200 else []


async def test_a_cut_answer_resumes_on_the_other_gateway_and_is_saved(
    stack: Any, http: aiohttp.ClientSession
) -> None:
    gateway_a, gateway_b = stack.config.gateway_urls
    token = user_token(stack.config, unique("u-resume"))
    conversation = unique("conv-resume")
    before = sum([await work_served(http, url) for url in stack.config.agent_urls])

    run_id, seen = await start_and_cut(http, gateway_a, token, conversation)
    last_id = seen[-1][0]
    outsider = user_token(stack.config, unique("u-other"), "bluepeak-plumbing")
    assert (await resume(http, gateway_b, outsider, run_id, 0))[0] == 404
    status, rest = await resume(http, gateway_b, token, run_id, last_id)

    assert status == 200
    assert rest[0][0] == last_id + 1, "the numbering goes on where the client was"
    events = [e for _, e in seen] + [e for _, e in rest]
    assert [e["type"] for e in events].count("start") == 1, "no second run"
    assert events[-1]["type"] == "complete", events[-1]
    answer = "".join(e["token"] for e in events if e["type"] == "token")
    assert answer == events[-1]["response"] and "overtime" in answer.lower()
    # One agent run served the whole answer (the resume made no model call of its own).
    after = sum([await work_served(http, url) for url in stack.config.agent_urls])
    assert after - before == 1

    # The answer was saved though its client left: the history on either gateway shows it.
    history = await call(http, "GET", f"{gateway_a}/api/conversations/{conversation}", token)
    assert history.status == 200, history.body
    saved = history.body["messages"][-1]
    assert saved["role"] == "assistant" and saved["content"] == answer
    assert not saved.get("stopped")
