"""Resume with the AI SDK's own client: the `ai` package's `DefaultChatTransport` sends a message,
loses its connection after the first text delta and reconnects with `reconnectToStream` (what
`useChat({resume: true})` does in a browser); it gets the whole answer from the same run, and
another user of another company gets nothing to resume."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support.gateway_harness import (
    FakeUpstream,
    Gate,
    Gateway,
    gateway_settings,
    running_gateway,
    sql_answer,
)

from contracts.agent_api import TokenEvent

CLIENT_DIR = Path(__file__).resolve().parent.parent / "ai_sdk_client"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None, reason="needs Node.js (>= 20), npm"
)


@pytest.fixture(scope="module")
def ai_client() -> Path:
    """`tests/gateway/ai_sdk_client` with its locked `node_modules` installed (`npm ci`)."""
    if not (CLIENT_DIR / "node_modules" / "ai").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=CLIENT_DIR,
            check=True,
            timeout=300,
        )
    return CLIENT_DIR / "resume_chat.mjs"


def gated_answer(gate: asyncio.Event, conversation_id: str) -> list[Any]:
    """A data answer that pauses after its first answer token until `gate` opens."""
    script = sql_answer(conversation_id=conversation_id)
    first = next(
        i for i, s in enumerate(script) if isinstance(s, TokenEvent) and s.channel == "final"
    )
    return [*script[: first + 1], Gate(gate), *script[first + 1 :]]


async def cut_and_resume(
    script: Path,
    gw: Gateway,
    chat_id: str,
    gate: asyncio.Event,
    resumer: tuple[str, str] = ("u-alice", "acme-hvac"),
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run the client (u-alice sends, `resumer` resumes); open `gate` once it resumed (else
    at the end: the run is in progress while another user tries). Its lines before the report,
    and the report."""
    env = {
        **os.environ,
        "AI_URL": f"{gw.url}/api/chat",
        "AI_TOKEN": gw.token(),
        "AI_RESUME_TOKEN": gw.token(*resumer),
        "AI_CHAT": chat_id,
    }
    process = await asyncio.create_subprocess_exec(
        "node", str(script), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    steps: list[dict[str, Any]] = []
    async with asyncio.timeout(60):
        while True:
            line = await process.stdout.readline()
            assert line, (await process.stderr.read()).decode()
            step: dict[str, Any] = json.loads(line)
            if step["step"] == "report":
                break
            steps.append(step)
            if step["step"] == "resumed":
                gate.set()  # the answer goes on only once the client is following it again
        await process.wait()
    gate.set()
    assert process.returncode == 0
    return steps, step


async def test_the_ai_sdk_transport_resumes_a_cut_answer_from_the_same_run(
    upstream: FakeUpstream, ai_client: Path
) -> None:
    gate = asyncio.Event()
    upstream.script = gated_answer(gate, "chat-resume-js")
    async with running_gateway(gateway_settings(upstream.url)) as gw:
        steps, report = await cut_and_resume(ai_client, gw, "chat-resume-js", gate)
    assert "error" not in report, report
    assert [s["step"] for s in steps] == ["cut", "resumed"]
    assert "text-delta" in steps[0]["before"]  # it was cut mid-answer
    parts = [tuple(p) for p in report["resumed"]["parts"]]
    # The whole answer, assembled by the SDK from the replayed run: the tool call and every word.
    assert ("text", "There are 4.") in parts
    assert any(kind == "tool-sql_query" or name == "sql_query" for kind, name in parts), parts
    assert report["after_end"] is None  # an ended answer is history: nothing to resume
    assert len(upstream.streams()) == 1  # no second model call


async def test_another_company_s_user_has_nothing_to_resume(
    upstream: FakeUpstream, ai_client: Path
) -> None:
    gate = asyncio.Event()
    upstream.script = gated_answer(gate, "chat-tenant-js")
    async with running_gateway(gateway_settings(upstream.url)) as gw:
        bob = ("u-bob", "bluepeak-plumbing")
        steps, report = await cut_and_resume(ai_client, gw, "chat-tenant-js", gate, bob)
    assert [s["step"] for s in steps] == ["cut"]
    assert report == {"step": "report", "resumed": None}
