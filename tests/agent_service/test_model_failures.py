"""Failures of the model endpoint, as a client of the agent service sees them: stable codes, bounded
retries that never repeat a token, no hangs, and a client that leaves closes the model's stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from support.model_harness import CLASSIFY_TOOL, SQL_TOOL, answer, model_stack, route, script
from support.sse_client import StreamResult, stream_chat

from contracts.sse import SSEDecoder
from fake_openai import Fault, Match, Reply, Rule, Timing, ToolCall

Mint = Callable[..., str]

ANSWER = "Hello there, I can count your jobs and read your policies."


def classify_fails(reply: Reply, **kw: Any) -> Rule:
    return Rule(name="classify-fails", match=Match(tool=CLASSIFY_TOOL), reply=reply, **kw)


def assert_error(result: StreamResult, code: str, *, retryable: bool) -> None:
    terminal = result.terminal
    assert terminal["event"] == "error", terminal
    assert terminal["code"] == code
    assert terminal["retryable"] is retryable
    # a safe message: the endpoint's own words stay in the logs
    assert "fake server" not in terminal["message"]
    assert [e for e in result.events if e["event"] in ("complete", "error")] == [terminal]


def rules_named(stack: Any, name: str) -> int:
    return sum(1 for r in stack.requests() if r.rule == name)


async def test_429_is_retried_a_bounded_number_of_times_then_model_rate_limited(
    data_dir: Path, mint: Mint
) -> None:
    rules = script(classify_fails(Reply.fail(429, "Slow down.", retry_after=0.01)))
    async with model_stack(rules, data_dir, model_max_retries=2) as stack:
        result = await stream_chat(stack.url, mint(), "hi")
        assert rules_named(stack, "classify-fails") == 3  # the first try and two retries
    assert_error(result, "MODEL_RATE_LIMITED", retryable=True)
    assert "rate-limiting" in result.terminal["message"]
    assert not result.of("token")


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_retried_then_model_unavailable(
    data_dir: Path, mint: Mint, status: int
) -> None:
    rules = script(classify_fails(Reply.fail(status, "The fake server is overloaded.")))
    async with model_stack(rules, data_dir, model_max_retries=1) as stack:
        result = await stream_chat(stack.url, mint(), "hi")
        assert rules_named(stack, "classify-fails") == 2
    assert_error(result, "MODEL_UNAVAILABLE", retryable=True)


async def test_a_transient_failure_is_retried_and_the_user_never_notices(
    data_dir: Path, mint: Mint
) -> None:
    rules = script(
        classify_fails(Reply.fail(503), times=1),
        route("general"),
        Rule(name="answer-fails", match=Match(has_tools=False), reply=Reply.fail(429), times=1),
        answer(ANSWER),
    )
    async with model_stack(rules, data_dir) as stack:
        result = await stream_chat(stack.url, mint(), "hi")
        assert [r.rule for r in stack.requests()] == [
            "classify-fails",
            "classify-general",
            "answer-fails",
            "answer",
        ]
    assert result.terminal["event"] == "complete"
    assert result.answer == ANSWER


@pytest.mark.parametrize(
    ("status", "code"),
    [(401, "MODEL_UNAVAILABLE"), (404, "MODEL_UNAVAILABLE"), (400, "MODEL_BAD_RESPONSE")],
)
async def test_a_refused_request_is_not_retried(
    data_dir: Path, mint: Mint, status: int, code: str
) -> None:
    rules = script(classify_fails(Reply.fail(status, "No.")))
    async with model_stack(rules, data_dir, model_max_retries=3) as stack:
        result = await stream_chat(stack.url, mint(), "hi")
        assert rules_named(stack, "classify-fails") == 1
    assert_error(result, code, retryable=code == "MODEL_UNAVAILABLE")


async def test_a_classifier_that_never_answers_times_out(data_dir: Path, mint: Mint) -> None:
    rules = script(classify_fails(Reply.text("{}"), fault=Fault("hang")))
    async with model_stack(rules, data_dir, model_timeout_s=0.3, model_max_retries=1) as stack:
        result = await stream_chat(stack.url, mint(), "hi")
        # the step's deadline spans its retries: a timed-out attempt leaves no room for another
        assert rules_named(stack, "classify-fails") == 1
        # the abandoned call was closed, not left waiting on the server
        await stack.fake.state.wait_for_disconnects(1)
    assert_error(result, "MODEL_TIMEOUT", retryable=True)


async def test_an_answer_that_stalls_after_tokens_times_out_without_a_retry(
    data_dir: Path, mint: Mint
) -> None:
    rules = script(
        route("general"),
        # role frame + 4 content frames, then silence
        answer(ANSWER, fault=Fault("hang", after_chunks=5)),
    )
    async with model_stack(rules, data_dir, model_stall_timeout_s=0.3) as stack:
        result = await stream_chat(stack.url, mint(), "hi")
        assert rules_named(stack, "answer") == 1  # tokens were out: a retry would repeat them
    assert_error(result, "MODEL_TIMEOUT", retryable=True)
    assert result.answer == "Hello there, I"


async def test_an_answer_that_stalls_before_any_token_is_retried(
    data_dir: Path, mint: Mint
) -> None:
    rules = script(
        route("general"),
        Rule(
            name="stalls",
            match=Match(has_tools=False),
            reply=Reply.text(ANSWER),
            fault=Fault("hang", after_chunks=1),
            times=1,
        ),
        answer(ANSWER),
    )
    async with model_stack(rules, data_dir, model_stall_timeout_s=0.3) as stack:
        result = await stream_chat(stack.url, mint(), "hi")
    assert result.terminal["event"] == "complete"
    assert result.answer == ANSWER  # once, not twice


async def test_a_stream_dropped_mid_answer_is_model_unavailable_and_not_repeated(
    data_dir: Path, mint: Mint
) -> None:
    rules = script(route("general"), answer(ANSWER, fault=Fault("drop", after_chunks=4)))
    async with model_stack(rules, data_dir) as stack:
        result = await stream_chat(stack.url, mint(), "hi")
        assert rules_named(stack, "answer") == 1
    assert_error(result, "MODEL_UNAVAILABLE", retryable=True)
    assert result.answer == "Hello there,"


async def test_an_error_event_inside_the_stream_is_model_unavailable(
    data_dir: Path, mint: Mint
) -> None:
    fault = Fault("error_event", after_chunks=3, message="The fake server broke.")
    rules = script(route("general"), answer(ANSWER, fault=fault))
    async with model_stack(rules, data_dir) as stack:
        result = await stream_chat(stack.url, mint(), "hi")
    assert_error(result, "MODEL_UNAVAILABLE", retryable=True)
    assert result.answer == "Hello there"


async def test_a_route_outside_the_schema_is_a_bad_response_and_not_retried(
    data_dir: Path, mint: Mint
) -> None:
    garbage = Reply.json({"route": "weather", "confidence": 3, "reason": "?"})
    rules = script(classify_fails(garbage))
    async with model_stack(rules, data_dir) as stack:
        result = await stream_chat(stack.url, mint(), "hi")
        assert rules_named(stack, "classify-fails") == 1
    assert_error(result, "MODEL_BAD_RESPONSE", retryable=False)


async def test_unparsable_tool_arguments_are_a_bad_response(data_dir: Path, mint: Mint) -> None:
    rules = script(
        route("sql"),
        Rule(
            match=Match(tool=SQL_TOOL),
            reply=Reply.tools(ToolCall(SQL_TOOL, '{"sql": "SELECT count(*) FROM jobs')),
        ),
    )
    async with model_stack(rules, data_dir) as stack:
        result = await stream_chat(stack.url, mint(), "How many jobs?")
    assert_error(result, "MODEL_BAD_RESPONSE", retryable=False)
    assert not result.of("tool_start")


async def test_a_sql_writer_failure_ends_the_run_with_its_code(data_dir: Path, mint: Mint) -> None:
    rules = script(
        route("sql"), Rule(name="sql-fails", match=Match(tool=SQL_TOOL), reply=Reply.fail(502))
    )
    async with model_stack(rules, data_dir, model_max_retries=0) as stack:
        result = await stream_chat(stack.url, mint(), "How many jobs?")
    assert_error(result, "MODEL_UNAVAILABLE", retryable=True)


async def test_a_client_that_leaves_closes_the_stream_to_the_model(
    data_dir: Path, mint: Mint
) -> None:
    rules = script(
        route("general"),
        Rule(
            name="slow-answer",
            match=Match(has_tools=False),
            reply=Reply.filler(2000),
            timing=Timing(tps=50),
        ),
    )
    body = {
        "input": {"message": "tell me a long story"},
        "conversation": {"id": "conv-1", "user_id": "u-alice", "company_id": "acme-hvac"},
    }
    async with model_stack(rules, data_dir) as stack:
        tokens = 0
        async with aiohttp.ClientSession() as session:
            resp = await session.post(
                f"{stack.url}/internal/chat/stream",
                json=body,
                headers={"Authorization": f"Bearer {mint()}"},
            )
            decoder = SSEDecoder()
            async for chunk in resp.content.iter_any():
                for msg in decoder.feed(chunk):
                    if json.loads(msg.data).get("channel") == "final":
                        tokens += 1
                if tokens >= 3:
                    break
            resp.close()  # the client goes away mid-answer
        (gone,) = await stack.fake.state.wait_for_disconnects(1)
        assert stack.fake.state.active_responses == 0
        # and the run ended as cancelled, freeing the conversation
        metrics = ""
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                metrics = await (await session.get(f"{stack.url}/metrics")).text()
                if "agent_runs_cancelled_total 1.0" in metrics:
                    break
                await asyncio.sleep(0.02)
    assert gone.rule == "slow-answer"
    assert 3 <= gone.frames_sent < 2000
    assert "agent_runs_cancelled_total 1.0" in metrics
    assert "agent_active_streams 0.0" in metrics


async def test_an_answer_without_any_text_is_a_bad_response(data_dir: Path, mint: Mint) -> None:
    rules = script(
        route("general"),
        Rule(
            name="empty",
            match=Match(has_tools=False),
            reply=Reply.text("", finish_reason="content_filter"),
        ),
    )
    async with model_stack(rules, data_dir) as stack:
        result = await stream_chat(stack.url, mint(), "hi")
        assert rules_named(stack, "empty") == 1
    assert_error(result, "MODEL_BAD_RESPONSE", retryable=False)
