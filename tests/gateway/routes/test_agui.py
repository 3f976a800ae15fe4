"""`POST /api/agui` end to end: every event parsed with `ag-ui-protocol`'s own types, and the
official `@ag-ui/client` `HttpAgent` (npm, run by Node) as the client."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from ag_ui.core import Event
from pydantic import TypeAdapter
from support.gateway_harness import (
    Die,
    FakeUpstream,
    Gateway,
    Refuse,
    gateway_settings,
    running_gateway,
    sql_answer,
)

CLIENT_DIR = Path(__file__).resolve().parent.parent / "agui_client"
EVENT: TypeAdapter[Any] = TypeAdapter(Event)


def run_input(
    thread_id: str = "thread-1", question: str = "How many technicians?"
) -> dict[str, Any]:
    return {
        "threadId": thread_id,
        "runId": "run-1",
        "state": {},
        "messages": [{"id": "m1", "role": "user", "content": question}],
        "tools": [],
        "context": [],
        "forwardedProps": {},
    }


async def post_agui(
    gw: Gateway, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """The status and either the parsed AG-UI events or the JSON error body."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{gw.url}/api/agui", json=body, headers=headers or gw.auth()) as resp,
    ):
        if resp.status != 200:
            return resp.status, await resp.json()
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        text = await resp.text()
    frames = [f for f in text.split("\n\n") if f.startswith("data: ")]
    return 200, [EVENT.validate_json(f.removeprefix("data: ")) for f in frames]


async def test_a_run_streams_typed_ag_ui_events(upstream: FakeUpstream) -> None:
    upstream.script = sql_answer(conversation_id="thread-1")
    async with running_gateway(gateway_settings(upstream.url)) as gw:
        status, events = await post_agui(gw, run_input())
    assert status == 200
    types = [e.type.value for e in events]
    assert types[0] == "RUN_STARTED" and types[-1] == "RUN_FINISHED"
    assert (
        "".join(e.delta for e in events if e.type.value == "TEXT_MESSAGE_CONTENT") == "There are 4."
    )
    assert [e.step_name for e in events if e.type.value == "STEP_STARTED"] == [
        "classify",
        "sql",
        "finalize",
    ]
    # the thread is the conversation, and the identity is the token's
    sent = upstream.streams()[0].body
    assert sent["conversation"] == {
        "id": "thread-1",
        "user_id": "u-alice",
        "company_id": "acme-hvac",
    }
    assert sent["input"]["message"] == "How many technicians?"


async def test_a_cut_off_agent_ends_the_run_with_run_error(upstream: FakeUpstream) -> None:
    upstream.script = [*sql_answer()[:3], Die()]
    async with running_gateway(gateway_settings(upstream.url)) as gw:
        status, events = await post_agui(gw, run_input())
    assert status == 200
    assert events[-1].type.value == "RUN_ERROR"
    assert events[-1].code == "UPSTREAM_UNAVAILABLE"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"threadId": "t"}, 400, "INVALID_REQUEST"),
        ({**run_input(), "messages": []}, 400, "INVALID_REQUEST"),
        (run_input(thread_id="not a valid id!"), 400, "INVALID_REQUEST"),
    ],
)
async def test_bad_input_is_a_clear_400(
    upstream: FakeUpstream, body: dict[str, Any], status: int, code: str
) -> None:
    async with running_gateway(gateway_settings(upstream.url)) as gw:
        got, error = await post_agui(gw, body)
    assert (got, error["error"]["code"]) == (status, code)
    assert upstream.streams() == []


async def test_auth_and_limits_are_the_chat_routes(upstream: FakeUpstream) -> None:
    upstream.script = sql_answer()
    settings = gateway_settings(upstream.url, limit_user_requests=1)
    async with running_gateway(settings) as gw:
        status, error = await post_agui(gw, run_input(), headers={"Authorization": "Bearer nope"})
        assert (status, error["error"]["code"]) == (401, "UNAUTHORIZED")
        assert (await post_agui(gw, run_input()))[0] == 200
        status, error = await post_agui(gw, run_input())
        assert (status, error["error"]["code"]) == (429, "RATE_LIMITED")


async def test_an_agent_refusal_is_the_agent_s_status(upstream: FakeUpstream) -> None:
    upstream.script = [Refuse(409, "CONVERSATION_BUSY", "busy")]
    async with running_gateway(gateway_settings(upstream.url)) as gw:
        status, error = await post_agui(gw, run_input())
    assert (status, error["error"]["code"]) == (409, "CONVERSATION_BUSY")


# --- the official client ---


@pytest.fixture(scope="module")
def agui_client() -> Path:
    """`tests/gateway/agui_client` with its locked `node_modules` installed (`npm ci`)."""
    if not (CLIENT_DIR / "node_modules" / "@ag-ui" / "client").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=CLIENT_DIR,
            check=True,
            timeout=300,
        )
    return CLIENT_DIR / "run_agent.mjs"


async def run_http_agent(script: Path, gw: Gateway, token: str, thread: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "AGUI_URL": f"{gw.url}/api/agui",
        "AGUI_TOKEN": token,
        "AGUI_THREAD": thread,
    }
    process = await asyncio.create_subprocess_exec(
        "node",
        str(script),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    report: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return report


node_only = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None, reason="needs Node.js (>= 20), npm"
)


@node_only
async def test_the_official_http_agent_runs_a_turn(
    upstream: FakeUpstream, agui_client: Path
) -> None:
    upstream.script = sql_answer(conversation_id="thread-js")
    async with running_gateway(gateway_settings(upstream.url)) as gw:
        report = await run_http_agent(agui_client, gw, gw.token(), "thread-js")
    assert "error" not in report, report
    seen = [tuple(e) for e in report["seen"]]
    assert ("STEP_STARTED", "sql") in seen
    assert ("TOOL_CALL_START", "sql_query") in seen
    assert seen[-1] == ("RUN_FINISHED", None)
    # the client assembled the answer and the tool call into its messages
    assistant = [m for m in report["messages"] if m["role"] == "assistant"]
    assert any(m.get("content") == "There are 4." for m in assistant)
    assert any(
        call["function"]["name"] == "sql_query"
        for m in assistant
        for call in m.get("toolCalls") or []
    )
    assert report["result"]["sql"].startswith("SELECT count(*)")


@node_only
async def test_the_official_http_agent_reports_a_refusal(
    upstream: FakeUpstream, agui_client: Path
) -> None:
    async with running_gateway(gateway_settings(upstream.url)) as gw:
        report = await run_http_agent(agui_client, gw, "not-a-token", "thread-js")
    assert "401" in report["error"]
    assert upstream.streams() == []
