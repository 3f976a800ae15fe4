"""A data answer's rows travel with its tool_end, capped, and stay in the conversation's history."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Callable
from typing import Any

import aiohttp
from support.sse_client import stream_chat

from agent_service.graph.result_table import result_table
from agent_service.providers.base import QueryResult

Mint = Callable[..., str]


def query(rows: list[tuple[Any, ...]], columns: tuple[str, ...] = ("name", "n")) -> QueryResult:
    return QueryResult(sql="SELECT 1", columns=columns, rows=tuple(rows), truncated=False)


def test_rows_are_capped_by_count_and_bytes_and_say_so() -> None:
    rows = [(f"tech {i}", i) for i in range(100)]
    by_count = result_table(query(rows), max_rows=10, max_bytes=100_000)
    assert by_count is not None
    assert (len(by_count["rows"]), by_count["row_count"], by_count["capped"]) == (10, 100, True)
    by_bytes = result_table(query(rows), max_rows=100, max_bytes=200)
    assert by_bytes is not None
    assert len(json.dumps(by_bytes["columns"])) + len(json.dumps(by_bytes["rows"])) <= 200
    assert by_bytes["capped"] and 0 < len(by_bytes["rows"]) < 100
    assert result_table(query(rows), max_rows=0, max_bytes=8192) is None


def test_values_become_json_numbers_or_short_text() -> None:
    table = result_table(
        query(
            [(decimal.Decimal("12.50"), dt.date(2026, 3, 1), b"\x00\x01", "x" * 500, None, True)],
            columns=("a", "b", "c", "d", "e", "f"),
        ),
        max_rows=5,
        max_bytes=8192,
    )
    assert table is not None
    a, b, c, d, e, f = table["rows"][0]
    assert (a, b, c, e, f) == (12.5, "2026-03-01", "<2 bytes>", None, True)
    assert len(d) == 200 and d.endswith("…")


async def test_a_data_answer_streams_its_rows_and_its_history_keeps_them(
    agent_url: str, mint: Mint
) -> None:
    live = await stream_chat(agent_url, mint(), "List all technicians", conversation="conv-rows")
    end = next(e for e in live.events if e["event"] == "tool_end")
    table = end["table"]
    assert table["columns"] and table["rows"]
    assert table["row_count"] == len(table["rows"]) == live.terminal["stats"]["row_count"]
    async with (
        aiohttp.ClientSession() as s,
        s.get(
            f"{agent_url}/internal/conversations/conv-rows",
            headers={"Authorization": f"Bearer {mint()}"},
        ) as r,
    ):
        history = await r.json()
    question, answer = history["messages"]
    assert question["created_at"] <= answer["created_at"]
    assert answer["row_count"] == table["row_count"]
    assert answer["tools"] == [end]  # what the live view showed, rows and all


async def test_a_document_answer_counts_in_words_a_person_would_use(
    agent_url: str, mint: Mint
) -> None:
    live = await stream_chat(agent_url, mint(), "What is our overtime policy?")
    end = next(e for e in live.events if e["event"] == "tool_end")
    assert " 1 documents" not in end["summary"] and " 1 passages" not in end["summary"]
    assert "table" not in end
