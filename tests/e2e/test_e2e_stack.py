"""End to end through both real tiers: each company gets its own, correct answers everywhere."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from support.stack import Stack

from contracts.sse import SSEDecoder

TENANTS = [("u-alice", "acme-hvac"), ("u-bob", "bluepeak-plumbing")]


def scalar(data_dir: Path, sql: str, *params: Any) -> Any:
    with sqlite3.connect(data_dir / "demo.sqlite") as conn:
        return conn.execute(sql, params).fetchone()[0]


async def sse_events(
    stack: Stack, user: str, company: str, body: dict[str, Any]
) -> list[dict[str, Any]]:
    decoder = SSEDecoder()
    events: list[dict[str, Any]] = []
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            f"{stack.gateway.url}/api/chat/stream",
            json=body,
            headers=stack.gateway.auth(user, company),
        ) as resp,
    ):
        assert resp.status == 200, await resp.text()
        async for chunk in resp.content.iter_any():
            events.extend(json.loads(m.data) for m in decoder.feed(chunk))
    return events


@pytest.mark.parametrize(("user", "company"), TENANTS)
async def test_sse_data_answer_is_the_tenants_own(stack: Stack, user: str, company: str) -> None:
    events = await sse_events(stack, user, company, {"message": "How many technicians are active?"})
    types = [e["type"] for e in events]
    assert types[0] == "start" and types[-1] == "complete"
    assert "token" in types and "sql" in types and "tool_start" in types
    answer = "".join(e["token"] for e in events if e["type"] == "token")
    assert answer == events[-1]["response"]
    active = scalar(
        stack.data_dir,
        "SELECT count(*) FROM technicians WHERE company_id=? AND status='active'",
        company,
    )
    assert str(active) in answer
    sql = next(e for e in events if e["type"] == "sql")
    assert sql["row_count"] == 1 and "company_id" not in sql["sql"]


async def test_sse_answers_differ_between_companies(stack: Stack) -> None:
    answers = []
    for user, company in TENANTS:
        events = await sse_events(
            stack, user, company, {"message": "What is the total revenue from completed jobs?"}
        )
        answers.append(events[-1]["response"])
    assert answers[0] != answers[1]


@pytest.mark.parametrize(("user", "company"), TENANTS)
async def test_websocket_policy_answer_uses_the_tenants_documents(
    stack: Stack, user: str, company: str
) -> None:
    async with aiohttp.ClientSession() as s, s.ws_connect(stack.gateway.ws_url) as ws:
        await ws.send_json({"type": "auth", "token": stack.gateway.token(user, company)})
        assert (await ws.receive_json())["type"] == "auth_success"
        await ws.send_json({"type": "message", "message": "What is our overtime policy?"})
        seen: list[dict[str, Any]] = []
        while True:
            msg = await ws.receive_json(timeout=20)
            seen.append(msg)
            if msg["type"] in ("complete", "error"):
                break
    assert seen[-1]["type"] == "complete", seen[-1]
    assert any(m["type"] == "progress" and m["step"] == "rag_retrieval" for m in seen)
    sources = next(m for m in seen if m["type"] == "sources")["sources"]
    from agent_service.demo.data import DEMO_DOCS_DIR

    own = " ".join(" ".join(p.read_text().split()) for p in (DEMO_DOCS_DIR / company).glob("*.md"))
    assert all(" ".join(src["snippet"].split())[:60] in own for src in sources)
    assert "overtime" in seen[-1]["response"].lower()


async def test_ai_sdk_stream_carries_the_answer(stack: Stack) -> None:
    body = {
        "id": "chat-e2e-1",
        "messages": [
            {
                "id": "m1",
                "role": "user",
                "parts": [{"type": "text", "text": "How many jobs are completed?"}],
            }
        ],
        "trigger": "submit-message",
    }
    parts: list[dict[str, Any]] = []
    done = False
    async with (
        aiohttp.ClientSession() as s,
        s.post(f"{stack.gateway.url}/api/chat", json=body, headers=stack.gateway.auth()) as resp,
    ):
        assert resp.headers["x-vercel-ai-ui-message-stream"] == "v1"
        decoder = SSEDecoder()
        async for chunk in resp.content.iter_any():
            for m in decoder.feed(chunk):
                if m.data == "[DONE]":
                    done = True
                else:
                    parts.append(json.loads(m.data))
    assert done
    text = "".join(p["delta"] for p in parts if p["type"] == "text-delta")
    completed = scalar(
        stack.data_dir,
        "SELECT count(*) FROM jobs WHERE company_id='acme-hvac' AND status='completed'",
    )
    assert str(completed) in text
    assert parts[-1]["type"] == "finish"


async def test_conversations_through_the_gateway_are_private(stack: Stack) -> None:
    events = await sse_events(stack, "u-alice", "acme-hvac", {"message": "List all technicians"})
    conversation = events[0]["conversation_id"]
    follow = await sse_events(
        stack,
        "u-alice",
        "acme-hvac",
        {"message": "tell me about the first one", "conversation_id": conversation},
    )
    assert follow[-1]["type"] == "complete"
    async with aiohttp.ClientSession() as s:
        async with s.get(
            f"{stack.gateway.url}/api/conversations", headers=stack.gateway.auth()
        ) as r:
            assert [c["id"] for c in (await r.json())["conversations"]] == [conversation]
        async with s.get(
            f"{stack.gateway.url}/api/conversations/{conversation}", headers=stack.gateway.auth()
        ) as r:
            history = await r.json()
        assert [m["role"] for m in history["messages"]] == ["user", "assistant"] * 2
        for user, company in [("u-dave", "acme-hvac"), ("u-bob", "bluepeak-plumbing")]:
            async with s.get(
                f"{stack.gateway.url}/api/conversations/{conversation}",
                headers=stack.gateway.auth(user, company),
            ) as r:
                assert r.status == 404
        async with s.delete(
            f"{stack.gateway.url}/api/conversations/{conversation}", headers=stack.gateway.auth()
        ) as r:
            assert r.status == 204
        async with s.get(
            f"{stack.gateway.url}/api/conversations/{conversation}", headers=stack.gateway.auth()
        ) as r:
            assert r.status == 404


async def test_non_streaming_endpoint(stack: Stack) -> None:
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            f"{stack.gateway.url}/api/chat/complete",
            json={"message": "How many customers do we have?"},
            headers=stack.gateway.auth("u-carol", "citywide-electric"),
        ) as r,
    ):
        assert r.status == 200
        body = await r.json()
    customers = scalar(
        stack.data_dir, "SELECT count(*) FROM customers WHERE company_id='citywide-electric'"
    )
    assert str(customers) in json.dumps(body)


async def test_identity_provider_subjects_outside_the_id_pattern_work(stack: Stack) -> None:
    # Auth0-style subjects (`|`, `+`) are mapped to a stable safe id on the way to the agent.
    user = "auth0|abc+x@y"
    events = await sse_events(stack, user, "acme-hvac", {"message": "List all technicians"})
    assert events[-1]["type"] == "complete"
    conversation = events[0]["conversation_id"]
    gateway = stack.gateway
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{gateway.url}/api/conversations", headers=gateway.auth(user)) as r:
            assert r.status == 200, await r.text()
            assert [c["id"] for c in (await r.json())["conversations"]] == [conversation]
        async with s.get(
            f"{gateway.url}/api/conversations/{conversation}", headers=gateway.auth(user)
        ) as r:
            assert r.status == 200, await r.text()
            assert [m["role"] for m in (await r.json())["messages"]] == ["user", "assistant"]
        # Another subject that maps differently does not see it.
        async with s.get(
            f"{gateway.url}/api/conversations/{conversation}", headers=gateway.auth("auth0|abd")
        ) as r:
            assert r.status == 404
