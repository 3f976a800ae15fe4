"""Weak-model guard rails on the real-model path: an unsure router takes the documented default
route, a data step that read nothing says so (and `complete.stats.unanswered` says why), and a
structured-output method the server rejects stops the service at start-up."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.model_harness import (
    CLASSIFY_TOOL,
    FAST,
    SQL_TOOL,
    answer,
    model_stack,
    route,
    script,
    sql,
)
from support.sse_client import StreamResult, stream_chat

from agent_service.app import create_app
from agent_service.providers.openai.format_check import StructuredOutputUnsupported
from agent_service.settings import AgentSettings
from fake_openai import Match, Reply, Rule, running_fake_openai

Mint = Callable[..., str]


def unanswered(result: StreamResult) -> str | None:
    assert result.terminal["event"] == "complete", result.terminal
    value: str | None = result.terminal["stats"]["unanswered"]
    return value


# --- the router ----------------------------------------------------------------------------------


async def test_an_unsure_router_naming_a_data_word_goes_to_sql(data_dir: Path, mint: Mint) -> None:
    rules = script(
        route("general", confidence=0.5),
        sql("SELECT count(*) AS n FROM technicians WHERE status = 'active'"),
        answer("You have 6 active technicians."),
    )
    async with model_stack(rules, data_dir) as stack:
        result = await stream_chat(stack.url, mint(), "How many technicians are active?")
    decision = result.events[0]
    assert decision["route"] == "sql"
    assert decision["confidence"] == 0.5  # the router's own, shown as it was
    assert "technicians" in decision["reason"] and decision["reason"].startswith("default route")
    assert result.answer == "You have 6 active technicians."
    assert unanswered(result) is None


async def test_an_unsure_router_without_a_data_word_tries_the_documents(
    data_dir: Path, mint: Mint
) -> None:
    rules = script(route("sql", confidence=0.5), answer("Overtime is paid at 1.5x [1]."))
    async with model_stack(rules, data_dir) as stack:
        result = await stream_chat(stack.url, mint(), "What is our overtime policy?")
        offered_sql = stack.offered(SQL_TOOL)
    assert result.events[0]["route"] == "rag"
    assert not offered_sql  # no query was asked for
    assert result.of("tool_start")[0]["tool"] == "document_search"
    assert result.terminal["stats"]["sources"]
    assert unanswered(result) is None


async def test_a_confident_router_is_followed(data_dir: Path, mint: Mint) -> None:
    rules = script(route("general", confidence=0.6), answer("Hi! Ask me about jobs."))
    async with model_stack(rules, data_dir) as stack:
        result = await stream_chat(stack.url, mint(), "hello there")
    assert result.events[0]["route"] == "general"
    assert result.answer == "Hi! Ask me about jobs."


async def test_the_threshold_is_a_setting(data_dir: Path, mint: Mint) -> None:
    rules = script(route("general", confidence=0.5), answer("Hi!"))
    async with model_stack(rules, data_dir, model_route_min_confidence=0.4) as stack:
        result = await stream_chat(stack.url, mint(), "hello there")
    assert result.events[0]["route"] == "general"


async def test_an_unusable_router_reply_with_nothing_to_find_says_so(
    data_dir: Path, mint: Mint
) -> None:
    rules = script(
        Rule(
            name="classify-prose",
            match=Match(tool=CLASSIFY_TOOL),
            reply=Reply.text("Sure! Routing is fun."),
        )
    )
    async with model_stack(rules, data_dir) as stack:
        result = await stream_chat(stack.url, mint(), "zxqv wibble")
        answering = stack.answering()
    assert result.events[0]["route"] == "rag"
    assert result.events[0]["confidence"] == 0.0
    assert not answering  # the no-passages reply is fixed: nothing for a model to improvise from
    assert "policy documents" in result.answer
    assert unanswered(result) == "no_passages"


# --- data steps that read nothing -----------------------------------------------------------------


async def test_queries_that_all_fail_are_reported_as_such(data_dir: Path, mint: Mint) -> None:
    rules = script(route("sql"), *(sql("SELECT nme FROM technicians", attempt=i) for i in range(3)))
    async with model_stack(rules, data_dir) as stack:
        result = await stream_chat(stack.url, mint(), "How many technicians are active?")
        answering = stack.answering()
    assert not answering
    assert "my queries failed 3 times" in result.answer
    assert unanswered(result) == "queries_failed"


async def test_no_rows_is_said_not_improvised(data_dir: Path, mint: Mint) -> None:
    rules = script(
        route("sql"),
        sql("SELECT name FROM technicians WHERE name = 'Nobody Atall'"),
        answer("Nobody Atall is one of your best technicians."),
    )
    async with model_stack(rules, data_dir) as stack:
        result = await stream_chat(stack.url, mint(), "Which technician is Nobody Atall?")
        answering = stack.answering()
    assert not answering
    assert result.answer == "Nothing in your data matches that: the query returned no rows."
    assert result.terminal["stats"]["row_count"] == 0
    assert unanswered(result) is None  # "none" is an answer


async def test_a_refusal_is_reported_in_stats(data_dir: Path, mint: Mint) -> None:
    refuse = Rule(
        name="classify-refuse",
        match=Match(tool=CLASSIFY_TOOL),
        reply=Reply.json(
            {"route": "refuse", "confidence": 0.9, "reason": "a change", "refusal": "changes_data"}
        ),
    )
    async with model_stack(script(refuse), data_dir) as stack:
        result = await stream_chat(stack.url, mint(), "Delete every job")
    assert unanswered(result) == "refused"


# --- structured output at start-up ----------------------------------------------------------------


def settings_for(base_url: str, data_dir: Path, method: str) -> AgentSettings:
    overrides: dict[str, Any] = {
        **FAST,
        "model_startup_check": True,
        "model_structured_output": method,
    }
    return AgentSettings(
        data_dir=data_dir,
        env="test",
        seed_on_start=False,
        provider="openai",
        openai_base_url=base_url,
        **overrides,
    )


async def test_a_rejected_structured_output_method_stops_the_service_at_start_up(
    data_dir: Path,
) -> None:
    """llama-cpp-python's server answers `response_format: json_schema` with a 500 naming it."""
    rules = script(
        Rule(
            name="no-json-schema",
            match=Match(has_response_format=True),
            reply=Reply.fail(500, "response_format.type: Input should be 'text' or 'json_object'"),
        )
    )
    async with running_fake_openai(rules) as fake:
        app = create_app(settings_for(fake.base_url, data_dir, "json_schema"))
        with pytest.raises(StructuredOutputUnsupported) as refused:
            async with app.router.lifespan_context(app):
                pass
        assert len(fake.state.requests) == 1  # one probe, not retried
    message = str(refused.value)
    assert "AGENT_MODEL_STRUCTURED_OUTPUT=json_schema" in message
    assert "json_object" in message  # the server's own reason
    assert "function_calling" in message  # what to try instead


@pytest.mark.parametrize("method", ["function_calling", "json_mode"])
async def test_an_accepted_method_starts(data_dir: Path, mint: Mint, method: str) -> None:
    rules = script(
        Rule(name="probe-or-route", reply=Reply.json({"route": "general", "confidence": 0.9})),
    )
    async with running_fake_openai(rules) as fake:
        app = create_app(settings_for(fake.base_url, data_dir, method))
        async with app.router.lifespan_context(app):
            (probe,) = fake.state.requests
    assert probe.body["max_tokens"] == 1


async def test_an_unreachable_server_at_start_up_is_not_fatal(data_dir: Path) -> None:
    app = create_app(settings_for("http://127.0.0.1:9/v1", data_dir, "json_schema"))
    async with app.router.lifespan_context(app):
        pass  # started: the server may come up after the service
