"""The AG-UI and OpenAI-compatible surfaces through both real tiers: a token of one company never
reads another company's conversation, even when it names the same thread or conversation id."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import aiohttp
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam
from support.stack import Stack

ALICE = ("u-alice", "acme-hvac")
BOB = ("u-bob", "bluepeak-plumbing")


async def agui_turn(stack: Stack, who: tuple[str, str], thread: str, question: str) -> list[str]:
    body = {
        "threadId": thread,
        "runId": "run-1",
        "state": {},
        "messages": [{"id": "m1", "role": "user", "content": question}],
        "tools": [],
        "context": [],
        "forwardedProps": {},
    }
    async with (
        aiohttp.ClientSession() as s,
        s.post(f"{stack.gateway.url}/api/agui", json=body, headers=stack.gateway.auth(*who)) as r,
    ):
        assert r.status == 200, await r.text()
        text = await r.text()
    return [line for line in text.split("\n\n") if line]


async def history(stack: Stack, who: tuple[str, str], conversation: str) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as s,
        s.get(
            f"{stack.gateway.url}/api/conversations/{conversation}",
            headers=stack.gateway.auth(*who),
        ) as r,
    ):
        assert r.status == 200, await r.text()
        messages: list[dict[str, Any]] = (await r.json())["messages"]
    return messages


async def test_a_shared_thread_id_is_still_each_company_s_own(stack: Stack) -> None:
    frames = await agui_turn(stack, ALICE, "thread-shared", "How many technicians are active?")
    assert '"RUN_FINISHED"' in frames[-1]
    frames = await agui_turn(stack, BOB, "thread-shared", "List all technicians")
    assert '"RUN_FINISHED"' in frames[-1]
    bob = AsyncOpenAI(
        base_url=f"{stack.gateway.url}/v1", api_key=stack.gateway.token(*BOB), max_retries=0
    )
    async with bob:
        await bob.chat.completions.create(
            model="agent-chat",
            messages=[{"role": "user", "content": "How many customers do we have?"}],
            extra_body={"conversation_id": "thread-shared"},
        )
    alice_sees = [m["content"] for m in await history(stack, ALICE, "thread-shared")]
    bob_sees = [m["content"] for m in await history(stack, BOB, "thread-shared")]
    assert alice_sees[0] == "How many technicians are active?" and len(alice_sees) == 2
    assert bob_sees[0::2] == ["List all technicians", "How many customers do we have?"]
    assert "How many technicians are active?" not in bob_sees


async def test_the_same_opening_message_gives_each_company_its_own_conversation(
    stack: Stack,
) -> None:
    question: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "How many customers do we have?"}
    ]
    ids = []
    for who in (ALICE, BOB):
        client = AsyncOpenAI(
            base_url=f"{stack.gateway.url}/v1", api_key=stack.gateway.token(*who), max_retries=0
        )
        async with client:
            raw = await client.chat.completions.with_raw_response.create(
                model="agent-chat",
                messages=question,
            )
        ids.append(raw.headers["X-Conversation-ID"])
        assert raw.parse().choices[0].message.content
    assert ids[0] == ids[1]  # derived from the opening, but stored per company and user
    assert len(await history(stack, ALICE, ids[0])) == 2
    assert len(await history(stack, BOB, ids[1])) == 2


# --- docs/public-api.md's examples, run as written ---

PUBLIC_API = Path(__file__).resolve().parents[2] / "docs" / "public-api.md"


def section(title: str) -> str:
    return PUBLIC_API.read_text().split(f"## {title}", 1)[1].split("\n## ", 1)[0]


async def run(argv: list[str], stdin: str, token: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "TOKEN": token},
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate(stdin.encode())
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_the_documented_examples_work_as_written(stack: Stack) -> None:
    host = stack.gateway.url.removeprefix("http://")
    token = stack.gateway.token()
    agui = section("`POST /api/agui` (AG-UI)")
    (curl,) = re.findall(r"```sh\n(.*?)```", agui, re.S)
    out = await run(["bash", "-euo", "pipefail"], curl.replace("localhost:8000", host), token)
    assert '"type":"RUN_FINISHED"' in out and '"delta":' in out
    openai_section = section("`POST /v1/chat/completions`")
    (python,) = re.findall(r"```python\n(.*?)```", openai_section, re.S)
    out = await run([sys.executable, "-"], python.replace("localhost:8000", host), token)
    assert "active technicians" in out and "total_tokens=" in out
    (curl,) = re.findall(r"```sh\n(.*?)```", openai_section, re.S)
    out = await run(["bash", "-euo", "pipefail"], curl.replace("localhost:8000", host), token)
    assert json.loads(out)["choices"][0]["message"]["content"]
