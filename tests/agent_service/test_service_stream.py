"""The streaming contract end to end over real HTTP, with the offline provider and real SQLite."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from support.servers import serve_asgi
from support.sse_client import stream_chat

from agent_service.app import create_app
from agent_service.settings import AgentSettings

Mint = Callable[..., str]
MakeSettings = Callable[..., AgentSettings]


def count(data_dir: Path, sql: str, *params: Any) -> int:
    with sqlite3.connect(data_dir / "demo.sqlite") as conn:
        return int(conn.execute(sql, params).fetchone()[0])


def active_technicians(data_dir: Path, company: str) -> int:
    return count(
        data_dir, "SELECT count(*) FROM technicians WHERE company_id=? AND status='active'", company
    )


def assert_well_formed(events: list[dict[str, Any]], ids: list[str]) -> None:
    """Sequential ids, one terminal event, last."""
    assert ids == [str(i) for i in range(1, len(ids) + 1)]
    terminals = [e for e in events if e["event"] in ("complete", "error")]
    assert len(terminals) == 1
    assert events[-1] is terminals[0]


@pytest.mark.parametrize(
    ("user", "company"), [("u-alice", "acme-hvac"), ("u-bob", "bluepeak-plumbing")]
)
async def test_data_question_streams_the_tenants_own_number(
    agent_url: str, mint: Mint, data_dir: Path, user: str, company: str
) -> None:
    result = await stream_chat(
        agent_url,
        mint(user, company),
        "How many technicians are active?",
        user=user,
        company=company,
    )
    assert result.status == 200
    assert result.headers["content-type"].startswith("text/event-stream")
    assert result.headers["x-accel-buffering"] == "no"
    assert_well_formed(result.events, result.ids)
    assert result.names[0] == "route_decision"
    assert result.events[0]["route"] == "sql"
    assert [e["event"] for e in result.events if e["event"].startswith("tool")] == [
        "tool_start",
        "tool_end",
    ]
    start, end = result.of("tool_start")[0], result.of("tool_end")[0]
    assert start["call_id"] == end["call_id"]
    assert end["status"] == "ok"
    assert end["duration_ms"] >= 0
    expected = active_technicians(data_dir, company)
    assert str(expected) in result.answer
    stats = result.terminal["stats"]
    assert result.terminal["event"] == "complete"
    assert stats["route"] == "sql"
    assert stats["conversation_id"] == "conv-1"
    assert stats["sql"] and "company_id" not in stats["sql"]
    assert stats["row_count"] == 1
    assert stats["tokens"] == len([e for e in result.of("token") if e["channel"] == "final"]) > 1
    assert 0 < stats["ttft_ms"] <= stats["duration_ms"]
    # the SSE frames are named for their JSON's event
    assert result.names == [e["event"] for e in result.events]


async def test_two_companies_get_different_numbers(
    agent_url: str, mint: Mint, data_dir: Path
) -> None:
    acme = await stream_chat(
        agent_url, mint("u-alice", "acme-hvac"), "How many technicians are active?"
    )
    blue = await stream_chat(
        agent_url,
        mint("u-bob", "bluepeak-plumbing"),
        "How many technicians are active?",
        user="u-bob",
        company="bluepeak-plumbing",
    )
    assert active_technicians(data_dir, "acme-hvac") != active_technicians(
        data_dir, "bluepeak-plumbing"
    )
    assert acme.answer != blue.answer


def doc_text(data_dir: Path, company: str) -> str:
    from agent_service.demo.data import DEMO_DOCS_DIR

    return "\n".join(p.read_text() for p in sorted((DEMO_DOCS_DIR / company).glob("*.md")))


@pytest.mark.parametrize(
    ("user", "company"), [("u-alice", "acme-hvac"), ("u-carol", "citywide-electric")]
)
async def test_policy_question_answers_from_the_tenants_documents(
    agent_url: str, mint: Mint, data_dir: Path, user: str, company: str
) -> None:
    result = await stream_chat(
        agent_url, mint(user, company), "What is our overtime policy?", user=user, company=company
    )
    assert_well_formed(result.events, result.ids)
    assert result.events[0]["route"] == "rag"
    assert [e["tool"] for e in result.of("tool_start")] == ["document_search"]
    stats = result.terminal["stats"]
    assert stats["route"] == "rag"
    assert stats["sources"], "a policy answer lists its sources"
    own = " ".join(doc_text(data_dir, company).split())
    for source in stats["sources"]:
        assert " ".join(source["snippet"].split())[:80] in own
    assert "overtime" in result.answer.lower()


async def test_policy_answers_differ_between_companies(agent_url: str, mint: Mint) -> None:
    acme = await stream_chat(
        agent_url, mint("u-alice", "acme-hvac"), "What is our overtime policy?"
    )
    blue = await stream_chat(
        agent_url,
        mint("u-bob", "bluepeak-plumbing"),
        "What is our overtime policy?",
        user="u-bob",
        company="bluepeak-plumbing",
    )
    assert acme.answer and blue.answer and acme.answer != blue.answer
    acme_docs = {s["doc_id"] for s in acme.terminal["stats"]["sources"]}
    blue_snippets = " ".join(s["snippet"] for s in blue.terminal["stats"]["sources"])
    assert all(s["snippet"] not in blue_snippets for s in acme.terminal["stats"]["sources"]), (
        acme_docs
    )


async def test_classifier_never_streams_tokens(agent_url: str, mint: Mint) -> None:
    questions = ["How many jobs are completed?", "What is the on-call policy?", "hello there"]
    for n, question in enumerate(questions):
        result = await stream_chat(agent_url, mint(), question, conversation=f"conv-{n}")
        assert not [e for e in result.of("token") if e["channel"] == "classify"]
        assert result.terminal["event"] == "complete"


async def test_out_of_scope_question_is_answered_plainly(agent_url: str, mint: Mint) -> None:
    result = await stream_chat(agent_url, mint(), "What will the weather be in Paris tomorrow?")
    assert result.terminal["event"] == "complete"
    assert result.answer.strip()
    assert not result.of("tool_start")


async def test_paced_tokens_arrive_in_several_network_chunks(
    make_settings: MakeSettings, mint: Mint
) -> None:
    async with serve_asgi(create_app(make_settings(offline_pace_ms=5))) as url:
        result = await stream_chat(url, mint(), "How many technicians are active?")
    assert result.terminal["event"] == "complete"
    assert result.chunks >= 5


async def test_idle_stream_gets_comment_heartbeats(make_settings: MakeSettings, mint: Mint) -> None:
    async with serve_asgi(create_app(make_settings(offline_pace_ms=120, heartbeat_s=0.05))) as url:
        result = await stream_chat(url, mint(), "How many technicians are active?")
    assert b": heartbeat\n\n" in result.raw
    assert result.terminal["event"] == "complete"


async def test_memory_survives_a_restart(
    make_settings: MakeSettings, mint: Mint, data_dir: Path
) -> None:
    async with serve_asgi(create_app(make_settings())) as url:
        first = await stream_chat(url, mint(), "How many technicians are active?")
        assert first.terminal["event"] == "complete"
    async with serve_asgi(create_app(make_settings())) as url:
        follow = await stream_chat(url, mint(), "and how many are on leave?")
        on_leave = count(
            data_dir,
            "SELECT count(*) FROM technicians WHERE company_id='acme-hvac' AND status='on_leave'",
        )
        assert follow.terminal["event"] == "complete"
        assert str(on_leave) in follow.answer
        async with (
            aiohttp.ClientSession() as s,
            s.get(
                f"{url}/internal/conversations/conv-1",
                headers={"Authorization": f"Bearer {mint()}"},
            ) as r,
        ):
            history = await r.json()
    assert [m["role"] for m in history["messages"]] == ["user", "assistant", "user", "assistant"]
    assert history["messages"][2]["content"] == "and how many are on leave?"
    assert history["messages"][1]["route"] == "sql" and history["messages"][1]["sql"]


async def test_second_message_while_running_is_409(make_settings: MakeSettings, mint: Mint) -> None:
    async with serve_asgi(create_app(make_settings(offline_pace_ms=30))) as url:
        first = asyncio.create_task(stream_chat(url, mint(), "List all technicians"))
        await until_metric(url, "agent_active_streams", 1)  # the first reply is being written
        busy = await stream_chat(url, mint(), "How many jobs are completed?")
        other = await stream_chat(
            url, mint(), "How many jobs are completed?", conversation="conv-2"
        )
        done = await first
    assert busy.status == 409
    assert busy.events[0]["error"]["code"] == "CONVERSATION_BUSY"
    assert busy.events[0]["error"]["retryable"] is True
    assert other.status == 200 and other.terminal["event"] == "complete"
    assert done.terminal["event"] == "complete"


async def metric(url: str, name: str) -> float:
    async with aiohttp.ClientSession() as s, s.get(f"{url}/metrics") as r:
        text = await r.text()
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def until_metric(url: str, name: str, at_least: float, timeout_s: float = 10) -> None:
    """Poll /metrics until `name` reaches `at_least` (a TimeoutError after `timeout_s`)."""
    async with asyncio.timeout(timeout_s):
        while await metric(url, name) < at_least:  # noqa: ASYNC110 (seen over HTTP, no event)
            await asyncio.sleep(0.01)


async def test_client_disconnect_cancels_the_run(make_settings: MakeSettings, mint: Mint) -> None:
    async with serve_asgi(create_app(make_settings(offline_pace_ms=50))) as url:
        body = {
            "input": {"message": "List all technicians"},
            "conversation": {"id": "conv-1", "user_id": "u-alice", "company_id": "acme-hvac"},
        }
        async with aiohttp.ClientSession() as s:
            resp = await s.post(
                f"{url}/internal/chat/stream",
                json=body,
                headers={"Authorization": f"Bearer {mint()}"},
            )
            seen = b""
            while b"event: token" not in seen:
                seen += await resp.content.readany()
            resp.close()  # the client goes away mid-answer
        await until_metric(url, "agent_runs_cancelled_total", 1)
        assert await metric(url, "agent_runs_cancelled_total") == 1
        assert await metric(url, "agent_active_streams") == 0
        # the conversation is free again
        again = await stream_chat(url, mint(), "How many jobs are completed?")
        assert again.status == 200 and again.terminal["event"] == "complete"


async def test_a_stopped_answer_is_kept_in_the_history_marked_stopped(
    make_settings: MakeSettings, mint: Mint
) -> None:
    async with serve_asgi(create_app(make_settings(offline_pace_ms=50))) as url:
        body = {
            "input": {"message": "List all technicians"},
            "conversation": {"id": "conv-1", "user_id": "u-alice", "company_id": "acme-hvac"},
        }
        async with aiohttp.ClientSession() as s:
            resp = await s.post(
                f"{url}/internal/chat/stream",
                json=body,
                headers={"Authorization": f"Bearer {mint()}"},
            )
            seen = b""
            while seen.count(b"event: token") < 3:
                seen += await resp.content.readany()
            resp.close()  # stopped mid-answer
        # The conversation is released only after the partial answer is saved: once a new
        # question is taken (it waits up to AGENT_BUSY_WAIT_S for the stopped run to let go),
        # the history has it.
        again = await stream_chat(url, mint(), "How many jobs are completed?")
        assert again.status == 200
        async with (
            aiohttp.ClientSession() as s,
            s.get(
                f"{url}/internal/conversations/conv-1",
                headers={"Authorization": f"Bearer {mint()}"},
            ) as r,
        ):
            history = await r.json()
    roles = [m["role"] for m in history["messages"]]
    assert roles == ["user", "assistant", "user", "assistant"]
    stopped = history["messages"][1]
    assert stopped["stopped"] is True and stopped["content"]
    assert "stopped" not in history["messages"][3]


async def test_non_streaming_chat_matches_the_stream(agent_url: str, mint: Mint) -> None:
    streamed = await stream_chat(agent_url, mint(), "How many technicians are active?")
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            f"{agent_url}/internal/chat",
            json={
                "input": {"message": "How many technicians are active?"},
                "conversation": {"id": "conv-9", "user_id": "u-alice", "company_id": "acme-hvac"},
            },
            headers={"Authorization": f"Bearer {mint()}"},
        ) as r,
    ):
        assert r.status == 200
        answer = await r.json()
    assert answer["answer"] == streamed.answer
    assert answer["route"] == "sql"
    assert answer["stats"]["sql"] == streamed.terminal["stats"]["sql"]
    assert answer["tools"][0]["tool"] == "sql_query"


async def test_operational_endpoints(agent_url: str) -> None:
    async with aiohttp.ClientSession() as s:
        for path in ("/health", "/healthz"):
            async with s.get(f"{agent_url}{path}") as r:
                assert (await r.json())["status"] == "ok"
        for path in ("/ready", "/readyz"):
            async with s.get(f"{agent_url}{path}") as r:
                assert (await r.json())["provider"] == "offline"
        async with s.get(f"{agent_url}/metrics") as r:
            assert "agent_runs_started_total" in await r.text()
        async with s.get(f"{agent_url}/openapi.json") as r:
            doc = json.loads(await r.text())
    assert "/internal/chat/stream" in doc["paths"]
    assert "ChatRequest" in doc["components"]["schemas"]


async def test_another_service_with_its_own_es256_key_can_call(
    make_settings: MakeSettings, data_dir: Path
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from contracts.internal_token import mint_internal_token

    private = ec.generate_private_key(ec.SECP256R1())
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    settings = make_settings(internal_issuers={"gateway": "x" * 40, "billing": public_pem.decode()})
    token = mint_internal_token(
        issuer="billing",
        key=private_pem.decode(),
        user_id="u-alice",
        company_id="acme-hvac",
        algorithm="ES256",
    )
    forged = mint_internal_token(
        issuer="billing", key="y" * 40, user_id="u-alice", company_id="acme-hvac"
    )
    async with serve_asgi(create_app(settings)) as url:
        ok = await stream_chat(url, token, "How many technicians are active?")
        refused = await stream_chat(url, forged, "How many technicians are active?")
    assert ok.terminal["event"] == "complete"
    assert str(active_technicians(data_dir, "acme-hvac")) in ok.answer
    assert refused.status == 401


async def test_non_streaming_caller_that_leaves_cancels_the_run(
    make_settings: MakeSettings, mint: Mint
) -> None:
    async with serve_asgi(create_app(make_settings(offline_pace_ms=50))) as url:
        body = {
            "input": {"message": "List all technicians"},
            "conversation": {"id": "conv-1", "user_id": "u-alice", "company_id": "acme-hvac"},
        }

        async def ask_then_leave() -> None:
            async with aiohttp.ClientSession() as s, asyncio.timeout(0.5):
                await s.post(
                    f"{url}/internal/chat", json=body, headers={"Authorization": f"Bearer {mint()}"}
                )

        with pytest.raises(TimeoutError):
            await ask_then_leave()
        await until_metric(url, "agent_runs_cancelled_total", 1)
        assert await metric(url, "agent_runs_cancelled_total") == 1
        again = await stream_chat(url, mint(), "How many jobs are completed?")
        assert again.status == 200


async def test_the_stream_route_skips_the_middleware_but_keeps_its_duties(
    make_settings: MakeSettings, mint: Mint
) -> None:
    """With tracing off the streaming route is served without Starlette's layers
    (`AgentApp`): it still renders errors as the handlers do and counts requests by route and
    status."""
    app = create_app(make_settings())
    layered: list[str] = []
    async with serve_asgi(app) as url:
        assert (await metric(url, "agent_runs_started_total")) == 0  # builds the layers
        stack = app.middleware_stack
        assert stack is not None

        async def spy(scope: Any, receive: Any, send: Any) -> None:
            layered.append(scope["path"])
            await stack(scope, receive, send)

        app.middleware_stack = spy
        ok = await stream_chat(url, mint(), "How many technicians are active?")
        assert ok.status == 200 and ok.terminal["event"] == "complete"
        refused = await stream_chat(url, "not-a-token", "hello")
        assert refused.status == 401
        error = refused.events[0]["error"]
        assert error["code"] == "UNAUTHORIZED" and error["request_id"]
        counted = 'agent_http_requests_total{route="chat_stream",status="%s"}'
        assert await metric(url, counted % 200) == 1
        assert await metric(url, counted % 401) == 1
    # only the /metrics reads went through the stack
    assert layered and set(layered) == {"/metrics"}
