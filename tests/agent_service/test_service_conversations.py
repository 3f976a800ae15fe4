"""Conversations belong to one user of one company; anyone else sees nothing (404, never 403)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from support.sse_client import stream_chat

Mint = Callable[..., str]


async def call(url: str, method: str, path: str, token: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, url + path, headers={"Authorization": f"Bearer {token}"}) as r,
    ):
        return r.status, (await r.json() if r.status != 204 else None)


async def test_list_history_and_delete_for_the_owner(agent_url: str, mint: Mint) -> None:
    await stream_chat(agent_url, mint(), "How many technicians are active?", conversation="conv-a")
    await stream_chat(agent_url, mint(), "What is our safety policy?", conversation="conv-b")
    status, listing = await call(agent_url, "GET", "/internal/conversations", mint())
    assert status == 200
    assert [c["id"] for c in listing["conversations"]] == ["conv-b", "conv-a"]
    assert listing["conversations"][1]["title"] == "How many technicians are active?"
    assert listing["conversations"][1]["message_count"] == 1
    status, history = await call(agent_url, "GET", "/internal/conversations/conv-b", mint())
    assert status == 200
    assert history["messages"][1]["sources"]
    status, _ = await call(agent_url, "DELETE", "/internal/conversations/conv-b", mint())
    assert status == 204
    assert (await call(agent_url, "GET", "/internal/conversations/conv-b", mint()))[0] == 404
    assert (await call(agent_url, "DELETE", "/internal/conversations/conv-b", mint()))[0] == 404


async def test_deleting_erases_the_checkpoints(agent_url: str, mint: Mint, data_dir: Path) -> None:
    await stream_chat(agent_url, mint(), "How many technicians are active?", conversation="conv-x")

    def checkpoints() -> int:
        with sqlite3.connect(data_dir / "memory.sqlite") as conn:
            return int(
                conn.execute(
                    "SELECT count(*) FROM checkpoints WHERE thread_id = ?",
                    ("acme-hvac/u-alice/conv-x",),
                ).fetchone()[0]
            )

    assert checkpoints() > 0
    assert (await call(agent_url, "DELETE", "/internal/conversations/conv-x", mint()))[0] == 204
    assert checkpoints() == 0


async def test_other_users_and_tenants_see_nothing(agent_url: str, mint: Mint) -> None:
    await stream_chat(agent_url, mint(), "List all technicians", conversation="conv-secret")
    strangers = [
        mint("u-dave", "acme-hvac"),
        mint("u-alice", "bluepeak-plumbing"),
        mint("u-bob", "bluepeak-plumbing"),
    ]
    for token in strangers:
        assert (await call(agent_url, "GET", "/internal/conversations/conv-secret", token))[
            0
        ] == 404
        assert (await call(agent_url, "DELETE", "/internal/conversations/conv-secret", token))[
            0
        ] == 404
        status, listing = await call(agent_url, "GET", "/internal/conversations", token)
        assert status == 200 and listing["conversations"] == []
    # the owner still has it
    assert (await call(agent_url, "GET", "/internal/conversations/conv-secret", mint()))[0] == 200


async def test_reusing_another_tenants_conversation_id_reads_none_of_its_state(
    agent_url: str, mint: Mint, data_dir: Path
) -> None:
    alice = await stream_chat(agent_url, mint(), "List all technicians", conversation="shared-id")
    assert alice.terminal["event"] == "complete"
    with sqlite3.connect(data_dir / "demo.sqlite") as conn:
        acme_names = [
            r[0] for r in conn.execute("SELECT name FROM technicians WHERE company_id='acme-hvac'")
        ]
    bob_token = mint("u-bob", "bluepeak-plumbing")
    bob = await stream_chat(
        agent_url,
        bob_token,
        "tell me about the first one",
        conversation="shared-id",
        user="u-bob",
        company="bluepeak-plumbing",
    )
    assert bob.terminal["event"] == "complete"
    assert not any(name in bob.answer for name in acme_names)
    status, history = await call(agent_url, "GET", "/internal/conversations/shared-id", bob_token)
    assert status == 200
    assert [m["content"] for m in history["messages"] if m["role"] == "user"] == [
        "tell me about the first one"
    ]


async def test_malformed_conversation_ids_in_paths_are_404(agent_url: str, mint: Mint) -> None:
    for bad in ["a%27)%20OR%201%3D1%20--", "..%2F..%2Fx", "x" * 200]:
        assert (await call(agent_url, "GET", f"/internal/conversations/{bad}", mint()))[0] == 404


async def test_a_conversation_keeps_one_checkpoint(
    agent_url: str, mint: Mint, data_dir: Path
) -> None:
    for question in [
        "How many technicians are active?",
        "and how many are on leave?",
        "List all technicians",
    ]:
        result = await stream_chat(agent_url, mint(), question, conversation="conv-long")
        assert result.terminal["event"] == "complete"
    thread = ("acme-hvac/u-alice/conv-long",)
    with sqlite3.connect(data_dir / "memory.sqlite") as conn:
        stored = conn.execute("SELECT count(*) FROM checkpoints WHERE thread_id = ?", thread)
        assert stored.fetchone()[0] == 1
        # no pending writes left behind for checkpoints that are gone
        orphans = conn.execute(
            "SELECT count(*) FROM writes WHERE thread_id = ? AND checkpoint_id NOT IN "
            "(SELECT checkpoint_id FROM checkpoints WHERE thread_id = ?)",
            thread * 2,
        )
        assert orphans.fetchone()[0] == 0
    status, history = await call(agent_url, "GET", "/internal/conversations/conv-long", mint())
    assert status == 200
    assert len(history["messages"]) == 6


async def test_a_question_is_stored_and_counted_together_or_not_at_all(
    agent_url: str, mint: Mint, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The question's checkpoint and the conversation's count are one transaction: a count
    that fails leaves no question in the history either (and the next message goes through)."""
    from agent_service.runs import runner

    def full(*_: Any) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(runner, "count_message", full)
    result = await stream_chat(agent_url, mint(), "List all technicians", conversation="conv-tx")
    assert result.status >= 500, result.events
    with sqlite3.connect(data_dir / "memory.sqlite") as conn:
        stored = conn.execute(
            "SELECT count(*) FROM checkpoints WHERE thread_id = ?", ("acme-hvac/u-alice/conv-tx",)
        )
        assert stored.fetchone()[0] == 0
    assert (await call(agent_url, "GET", "/internal/conversations/conv-tx", mint()))[0] == 404
    monkeypatch.undo()
    result = await stream_chat(agent_url, mint(), "List all technicians", conversation="conv-tx")
    assert result.terminal["event"] == "complete"
    status, listing = await call(agent_url, "GET", "/internal/conversations", mint())
    assert [c["message_count"] for c in listing["conversations"] if c["id"] == "conv-tx"] == [1]
    status, history = await call(agent_url, "GET", "/internal/conversations/conv-tx", mint())
    assert status == 200
    assert [m["role"] for m in history["messages"]] == ["user", "assistant"]


def test_turns_are_capped() -> None:
    from agent_service.graph.state import MAX_KEPT_TURNS, TurnRecord, append_turns

    kept: list[TurnRecord] = []
    for i in range(MAX_KEPT_TURNS + 30):
        kept = append_turns(kept, [{"role": "user", "content": str(i)}])
    assert len(kept) == MAX_KEPT_TURNS
    assert kept[-1]["content"] == str(MAX_KEPT_TURNS + 29)
