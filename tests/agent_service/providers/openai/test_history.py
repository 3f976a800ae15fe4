"""Multi-turn conversations on the real-model path: history trimmed to a budget, latest kept."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.messages import convert_to_messages
from langchain_core.messages.utils import count_tokens_approximately
from support.model_harness import CLASSIFY_TOOL, model_stack, route, script
from support.sse_client import stream_chat

from fake_openai import Match, Reply, Rule

Mint = Callable[..., str]

BUDGET = 400


def history_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The turns between the system prompt and the current question."""
    messages = body["messages"]
    assert messages[0]["role"] == "system" and messages[-1]["role"] == "user"
    return list(messages[1:-1])


async def test_a_long_conversation_is_trimmed_to_the_budget_keeping_the_latest_turns(
    data_dir: Path, mint: Mint
) -> None:
    rules = script(
        route("general"),
        # about 150 words per answer: three of them already overflow the budget
        Rule(name="long-answer", match=Match(has_tools=False), reply=Reply.filler(150)),
    )
    async with model_stack(rules, data_dir, model_history_tokens=BUDGET) as stack:
        for n in range(1, 8):
            result = await stream_chat(stack.url, mint(), f"question {n} marker-{n}")
            assert result.terminal["event"] == "complete"
        requests = stack.requests()

    last_classify = [r.body for r in requests if r.rule == "classify-general"][-1]
    last_answer = [r.body for r in requests if r.rule == "long-answer"][-1]
    for body in (last_classify, last_answer):
        history = history_of(body)
        assert body["messages"][-1]["content"].endswith("marker-7")
        assert count_tokens_approximately(convert_to_messages(history)) <= BUDGET
        # what is kept is the end of the conversation, whole turns, starting on a question
        assert history[0]["role"] == "user"
        assert history[-2]["content"] == "question 6 marker-6"
        assert history[-1]["role"] == "assistant"
        assert "marker-1" not in str(history)
        assert len(history) < 12  # six earlier turns did not all fit
    # early in the conversation nothing had to go
    first_with_history = [r.body for r in requests if r.rule == "classify-general"][1]
    assert history_of(first_with_history)[0]["content"] == "question 1 marker-1"


async def test_a_zero_budget_sends_no_history(data_dir: Path, mint: Mint) -> None:
    rules = script(route("general"), Rule(match=Match(has_tools=False), reply=Reply.text("Ok.")))
    async with model_stack(rules, data_dir, model_history_tokens=0) as stack:
        await stream_chat(stack.url, mint(), "first")
        await stream_chat(stack.url, mint(), "second")
        bodies = [r.body for r in stack.requests()]
    assert all(len(b["messages"]) == 2 for b in bodies)


async def test_conversations_do_not_see_each_others_turns(data_dir: Path, mint: Mint) -> None:
    rules = script(route("general"), Rule(match=Match(has_tools=False), reply=Reply.text("Ok.")))
    async with model_stack(rules, data_dir) as stack:
        await stream_chat(stack.url, mint(), "secret-of-alice", conversation="a-1")
        await stream_chat(stack.url, mint("u-dave"), "hello from dave", user="u-dave")
        await stream_chat(stack.url, mint(), "hello again", conversation="a-2")
        classify = [r.body for r in stack.requests() if CLASSIFY_TOOL in str(r.body.get("tools"))]
    assert [len(history_of(b)) for b in classify] == [0, 0, 0]
    assert "secret-of-alice" not in str(classify[1:])
