"""Faults of the model endpoint that used to end badly: a chunk of the wrong shape (INTERNAL and a
traceback before), a model that never starts answering (61 s before), and retries that did not
fit the run's budget (93 s before)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.model_harness import CLASSIFY_TOOL, SQL_TOOL, answer, model_stack, route, script
from support.sse_client import stream_chat

from fake_openai import Fault, Match, Reply, Rule

Mint = Callable[..., str]
ANSWER = "Hello there, I can count your jobs and read your policies."


@pytest.mark.parametrize(
    "chunk",
    [
        '{"choices": "not-a-list"}',
        '{"choices": [{"delta": "not-an-object"}]}',
        '{"choices": [7]}',
        '{"usage": "lots"}',
    ],
)
async def test_a_chunk_of_the_wrong_shape_is_a_bad_response(
    data_dir: Path, mint: Mint, chunk: str
) -> None:
    rules = script(route("general"), answer(ANSWER, fault=Fault("raw", after_chunks=3, data=chunk)))
    async with model_stack(rules, data_dir) as stack:
        result = await stream_chat(stack.url, mint(), "hi")
    terminal = result.terminal
    assert terminal["event"] == "error", terminal
    assert terminal["code"] == "MODEL_BAD_RESPONSE"
    assert terminal["retryable"] is False
    assert result.answer == "Hello there"  # what came before the bad chunk, once


def _ended_with_timeout(result: Any, step_words: str) -> None:
    terminal = result.terminal
    assert terminal["event"] == "error", terminal
    assert terminal["code"] == "MODEL_TIMEOUT"
    assert terminal["retryable"] is True
    assert step_words in terminal["message"], terminal["message"]
    assert [e for e in result.events if e["event"] in ("complete", "error")] == [terminal]


async def test_a_model_that_hangs_before_its_first_token_ends_within_the_first_token_deadline(
    data_dir: Path, mint: Mint
) -> None:
    # the stall timeout (20 s) and the run's (120 s) are far away: only the first-token
    # deadline can end this, and retries of the step may not outlast it
    hangs = Rule(name="hangs", match=Match(has_tools=False), reply=Reply.text(ANSWER))
    rules = script(route("general"), Rule(**{**_rule_fields(hangs), "fault": Fault("hang")}))
    async with model_stack(
        rules,
        data_dir,
        model_first_token_timeout_s=0.6,
        model_stall_timeout_s=20,
        model_max_retries=3,
    ) as stack:
        started = time.perf_counter()
        result = await stream_chat(stack.url, mint(), "hi")
        elapsed = time.perf_counter() - started
        await stack.fake.state.wait_for_disconnects(1)  # the hung request was closed
    _ended_with_timeout(result, "did not start answering within 0.6 s (answer step)")
    assert 0.5 < elapsed < 3.0
    assert not result.of("token")


async def test_a_timed_out_step_is_not_retried_when_another_attempt_cannot_fit(
    data_dir: Path, mint: Mint
) -> None:
    # before: the SQL step timed out three times in a row (the user waited 3 x 30 s)
    rules = script(
        route("sql"),
        Rule(
            name="sql-hangs",
            match=Match(tool=SQL_TOOL),
            reply=Reply.text("thinking"),
            fault=Fault("hang"),
        ),
    )
    async with model_stack(rules, data_dir, model_timeout_s=0.5, model_max_retries=2) as stack:
        started = time.perf_counter()
        result = await stream_chat(stack.url, mint(), "What is our overtime policy?")
        elapsed = time.perf_counter() - started
        assert sum(1 for r in stack.requests() if r.rule == "sql-hangs") == 1
    _ended_with_timeout(result, "did not answer within 0.5 s (SQL step)")
    assert elapsed < 2.5


async def test_a_step_never_outlasts_the_run_deadline_and_says_which_step_ran_out(
    data_dir: Path, mint: Mint
) -> None:
    rules = script(
        Rule(
            name="classify-hangs",
            match=Match(tool=CLASSIFY_TOOL),
            reply=Reply.text("{}"),
            fault=Fault("hang"),
        )
    )
    async with model_stack(rules, data_dir, model_timeout_s=30, run_timeout_s=0.8) as stack:
        started = time.perf_counter()
        result = await stream_chat(stack.url, mint(), "hi")
        elapsed = time.perf_counter() - started
    _ended_with_timeout(result, "within the reply's time limit (routing step)")
    assert elapsed < 2.5


async def test_a_fast_failure_is_still_retried_within_the_first_token_deadline(
    data_dir: Path, mint: Mint
) -> None:
    rules = script(
        route("general"),
        Rule(name="fails", match=Match(has_tools=False), reply=Reply.fail(503), times=2),
        answer(ANSWER),
    )
    async with model_stack(rules, data_dir, model_first_token_timeout_s=5) as stack:
        result = await stream_chat(stack.url, mint(), "hi")
    assert result.terminal["event"] == "complete"
    assert result.answer == ANSWER


def _rule_fields(rule: Rule) -> dict[str, Any]:
    return {"name": rule.name, "match": rule.match, "reply": rule.reply}
