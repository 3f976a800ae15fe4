"""The real-model path end to end: the agent service on ChatOpenAI against the fake server."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from support.model_harness import (
    CLASSIFY_TOOL,
    SQL_TOOL,
    answer,
    model_stack,
    route,
    script,
    sql,
    texts,
    tool_names,
)
from support.sse_client import stream_chat

from fake_openai import Match, Reply, Rule, Timing
from fake_openai.completion import prompt_tokens
from fake_openai.request import parse_chat_request

Mint = Callable[..., str]


def scalar(data_dir: Path, query: str, *params: object) -> int:
    with sqlite3.connect(data_dir / "demo.sqlite") as conn:
        return int(conn.execute(query, params).fetchone()[0])


async def test_a_data_question_is_answered_from_the_rows_the_models_query_returned(
    data_dir: Path, mint: Mint
) -> None:
    expected = scalar(
        data_dir,
        "SELECT count(*) FROM technicians WHERE company_id = 'acme-hvac' AND status = 'active'",
    )
    rules = script(
        route("sql"),
        sql("SELECT count(*) AS active_technicians FROM technicians WHERE status = 'active'"),
        # the fake answers with the number only if the rows it was given carry that number
        answer(
            f"You have {expected} active technicians.",
            match=Match(has_tools=False, last_user_regex=rf"\n\[{expected}\]\n"),
        ),
    )
    async with model_stack(rules, data_dir) as stack:
        result = await stream_chat(stack.url, mint(), "How many technicians are active?")
        requests = stack.requests()

    assert [e["event"] for e in result.events if e["event"] != "token"] == [
        "route_decision",
        "tool_start",
        "tool_end",
        "complete",
    ]
    assert result.events[0] == {
        "event": "route_decision",
        "route": "sql",
        "confidence": 0.9,
        "reason": "a sql question",
    }
    assert result.of("tool_end")[0]["status"] == "ok"
    assert [int(n) for n in re.findall(r"\d+", result.answer)] == [expected]
    assert len([e for e in result.of("token") if e["channel"] == "final"]) > 3
    # the classifier's output never reaches the user as tokens
    assert {e["channel"] for e in result.of("token")} == {"sql_agent", "final"}
    stats = result.terminal["stats"]
    assert stats["route"] == "sql"
    assert stats["row_count"] == 1
    assert "company_id" not in stats["sql"]
    # three calls: classify (forced tool, not streamed), SQL (tool offered), answer (streamed)
    assert [tool_names(r.body) for r in requests] == [[CLASSIFY_TOOL], [SQL_TOOL], []]
    assert [r.body.get("stream", False) for r in requests] == [False, False, True]
    assert requests[2].body["stream_options"] == {"include_usage": True}


async def test_the_curated_schema_hides_the_tenant_column_and_shows_no_rows(
    data_dir: Path, mint: Mint
) -> None:
    rules = script(route("sql"), sql("SELECT count(*) FROM customers"), answer("Some."))
    async with model_stack(rules, data_dir) as stack:
        await stream_chat(stack.url, mint(), "How many customers do we have?")
        (sql_request,) = stack.offered(SQL_TOOL)
    system = "\n".join(texts(sql_request, "system"))
    assert "TABLE technicians" in system and "TABLE jobs" in system
    assert "company_id" not in system
    assert "acme" not in system.lower()
    assert INJECTION_FRAGMENT not in system


INJECTION_FRAGMENT = "Ignore all previous instructions"


async def test_usage_from_every_call_adds_up_in_complete_stats(data_dir: Path, mint: Mint) -> None:
    rules = script(route("general"), answer("Hello! I can answer questions about your data."))
    async with model_stack(rules, data_dir) as stack:
        result = await stream_chat(stack.url, mint(), "hi there")
        requests = stack.requests()
    usage = result.terminal["stats"]["usage"]
    assert len(requests) == 2  # classify, then the answer; no SQL, no retrieval
    # the fake's estimates: the answer's 10 tokens plus the classifier's tool-call tokens
    assert usage["completion_tokens"] > 10
    assert usage["prompt_tokens"] > 100
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    # the routing call's prompt counts too (the gateway charges the company from this total)
    asked = [
        prompt_tokens(parse_chat_request(json.dumps(r.body).encode(), default_model="m"))
        for r in requests
    ]
    assert usage["prompt_tokens"] == sum(asked)
    assert result.answer == "Hello! I can answer questions about your data."
    assert result.terminal["stats"]["route"] == "general"
    assert not result.of("tool_start")


async def test_a_policy_question_is_answered_from_the_tenants_passages_with_sources(
    data_dir: Path, mint: Mint
) -> None:
    rules = script(
        route("rag"),
        answer(
            "Overtime is paid at time and a half [1].",
            match=Match(has_tools=False, last_user="Passages ("),
        ),
    )
    async with model_stack(rules, data_dir) as stack:
        result = await stream_chat(
            stack.url,
            mint("u-bob", "bluepeak-plumbing"),
            "What is our overtime policy?",
            user="u-bob",
            company="bluepeak-plumbing",
        )
        (answering,) = stack.answering()
    assert result.events[0]["route"] == "rag"
    assert [e["tool"] for e in result.of("tool_end")] == ["document_search"]
    assert result.answer == "Overtime is paid at time and a half [1]."
    sources = result.terminal["stats"]["sources"]
    assert sources and all(s["doc_id"] for s in sources)
    prompt = texts(answering, "user")[-1]
    # the passages are this tenant's, framed as data and numbered for citation
    assert '<untrusted-data kind="passages">' in prompt
    flat = " ".join(prompt.split())
    assert all(" ".join(s["snippet"].split())[:60] in flat for s in sources)
    assert "Bluepeak" in prompt and "Acme" not in prompt
    assert "[1] " in prompt


async def test_a_citation_of_a_passage_that_was_not_given_is_removed(
    data_dir: Path, mint: Mint
) -> None:
    rules = script(
        route("rag"),
        answer("Overtime needs approval [1]. Double time applies on holidays [7]. See [2, 9]."),
    )
    async with model_stack(rules, data_dir, rag_top_k=3) as stack:
        result = await stream_chat(stack.url, mint(), "What is our overtime policy?")
        (answering,) = stack.answering()
    assert "Passages (3; cite them as [1] to [3])" in texts(answering, "user")[-1]
    assert len(result.terminal["stats"]["sources"]) == 3
    assert result.answer == "Overtime needs approval [1]. Double time applies on holidays. See [2]."


async def test_citations_split_across_chunks_are_checked_too(data_dir: Path, mint: Mint) -> None:
    # one character per chunk: every citation arrives in pieces
    rules = script(
        route("rag"),
        Rule(
            match=Match(has_tools=False),
            reply=Reply.text("Wear gloves [3] and goggles [12]."),
            timing=Timing(chunk_chars=1),
        ),
    )
    async with model_stack(rules, data_dir, rag_top_k=3) as stack:
        result = await stream_chat(stack.url, mint(), "What PPE does the safety policy require?")
    assert result.answer == "Wear gloves [3] and goggles."


async def test_a_greeting_takes_the_general_route_with_no_tools_anywhere(
    data_dir: Path, mint: Mint
) -> None:
    rules = script(route("general", confidence=0.75), answer("Hi! Ask me about jobs or policies."))
    async with model_stack(rules, data_dir) as stack:
        result = await stream_chat(stack.url, mint(), "Good morning!")
        (answering,) = stack.answering()
    assert result.events[0]["route"] == "general"
    assert result.events[0]["confidence"] == 0.75
    assert result.answer == "Hi! Ask me about jobs or policies."
    assert "tools" not in answering and "tool_choice" not in answering


async def test_the_model_saying_the_data_cannot_answer_is_streamed_without_a_query(
    data_dir: Path, mint: Mint
) -> None:
    reply = "I can't see weather data; I can count jobs, technicians and customers."
    rules = script(
        route("sql"),
        Rule(match=Match(tool=SQL_TOOL), reply=Reply.text(reply)),
    )
    async with model_stack(rules, data_dir) as stack:
        result = await stream_chat(stack.url, mint(), "How many jobs were rained out?")
        requests = stack.requests()
    assert result.terminal["event"] == "complete"
    assert not result.of("tool_start")
    assert result.answer == reply
    assert len(requests) == 2  # the plain reply is streamed as it is, not sent back to the model


@pytest.mark.parametrize("method", ["json_schema", "json_mode"])
async def test_routing_works_through_response_format_too(
    data_dir: Path, mint: Mint, method: str
) -> None:
    rules = script(
        Rule(
            name="classify-json",
            match=Match(has_response_format=True, has_tools=False),
            reply=Reply.json({"route": "general", "confidence": 0.6, "reason": "a greeting"}),
        ),
        answer("Hi!", match=Match(has_tools=False, has_response_format=False)),
    )
    async with model_stack(rules, data_dir, model_structured_output=method) as stack:
        result = await stream_chat(stack.url, mint(), "hello")
        classify = stack.requests()[0].body
    assert result.events[0]["route"] == "general"
    assert result.events[0]["reason"] == "a greeting"
    assert result.answer == "Hi!"
    assert "tools" not in classify
    assert classify["response_format"]["type"] == method.replace("_mode", "_object")


async def test_a_short_policy_follow_up_is_searched_with_the_question_it_follows(
    data_dir: Path, mint: Mint
) -> None:
    rules = script(
        route("rag"),
        answer("From the passages [1].", match=Match(has_tools=False, last_user="Passages (")),
    )
    user, company = "u-bob", "bluepeak-plumbing"
    async with model_stack(rules, data_dir) as stack:
        token = mint("u-bob", "bluepeak-plumbing")
        await stream_chat(
            stack.url, token, "From which hour am I on overtime?", user=user, company=company
        )
        result = await stream_chat(
            stack.url, token, "and what is it paid at?", user=user, company=company
        )
        answering = stack.answering()
    (search,) = result.of("tool_start")
    assert "overtime" in search["input"].lower()
    # the model is given the overtime rate section, not "paid time off"
    assert "2x (double time)" in texts(answering[-1], "user")[-1]
