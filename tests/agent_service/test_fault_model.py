"""Faults of the model endpoint that used to end badly: a chunk of the wrong shape (INTERNAL and a
traceback before), a model that never starts answering (61 s before), and retries that did not
fit the run's budget (93 s before)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support.model_harness import answer, model_stack, route, script
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
