"""`/v1/chat/completions` and `/v1/models` with the official `openai` package as the client:
streamed and not, usage, the conversation it lands in, and errors as the SDK raises them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam
from support.gateway_harness import (
    FakeUpstream,
    Gateway,
    Refuse,
    gateway_settings,
    running_gateway,
    sql_answer,
)

from contracts.agent_api import ErrorEvent, RouteDecisionEvent, TokenEvent

QUESTION: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "How many technicians are active?"}
]


@asynccontextmanager
async def client_for(
    upstream: FakeUpstream, token: str | None = None, **overrides: Any
) -> AsyncIterator[tuple[AsyncOpenAI, Gateway]]:
    async with running_gateway(gateway_settings(upstream.url, **overrides)) as gw:
        client = AsyncOpenAI(
            base_url=f"{gw.url}/v1", api_key=token or gw.token(), max_retries=0, timeout=20
        )
        async with client:
            yield client, gw


async def test_a_completion_is_the_answer_with_its_usage(upstream: FakeUpstream) -> None:
    upstream.script = sql_answer()
    async with client_for(upstream) as (client, _):
        answer = await client.chat.completions.create(model="agent-chat", messages=QUESTION)
    assert answer.choices[0].message.content == "There are 4."
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.total_tokens) == (10, 15)
    sent = upstream.requests[-1].body
    assert sent["conversation"]["user_id"] == "u-alice"
    assert sent["input"]["message"] == "How many technicians are active?"


async def test_a_streamed_completion_ends_with_usage_when_asked(upstream: FakeUpstream) -> None:
    upstream.script = sql_answer()
    async with client_for(upstream) as (client, _):
        stream = await client.chat.completions.create(
            model="agent-chat",
            messages=QUESTION,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "There are 4."
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 15
    # nothing but the answer: no tool progress or reasoning a strict client would trip on
    assert "Counting" not in text


async def test_without_include_usage_no_usage_chunk(upstream: FakeUpstream) -> None:
    upstream.script = sql_answer()
    async with client_for(upstream) as (client, _):
        stream = await client.chat.completions.create(
            model="agent-chat",
            messages=QUESTION,
            stream=True,
        )
        chunks = [chunk async for chunk in stream]
    assert all(c.usage is None and c.choices for c in chunks)


async def test_every_turn_of_one_chat_lands_in_one_conversation(upstream: FakeUpstream) -> None:
    upstream.script = sql_answer()
    first: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": "Be brief."},
        *QUESTION,
    ]
    second: list[ChatCompletionMessageParam] = [
        *first,
        {"role": "assistant", "content": "There are 4."},
        {"role": "user", "content": "And inactive?"},
    ]
    async with client_for(upstream) as (client, _):
        await client.chat.completions.create(model="agent-chat", messages=first)
        await client.chat.completions.create(model="agent-chat", messages=second)
        await client.chat.completions.create(
            model="agent-chat",
            messages=QUESTION,
            extra_body={"conversation_id": "conv-mine"},
        )
        await client.chat.completions.create(
            model="agent-chat",
            messages=QUESTION,
            extra_headers={"X-Conversation-ID": "conv-header"},
        )
    ids = [r.body["conversation"]["id"] for r in upstream.requests]
    assert ids[0] == ids[1] and ids[0].startswith("oai-")
    assert ids[2:] == ["conv-mine", "conv-header"]
    assert upstream.requests[1].body["input"]["message"] == "And inactive?"


async def test_models_lists_the_one_model(upstream: FakeUpstream) -> None:
    async with client_for(upstream, openai_model="helpdesk") as (client, _):
        models = [m.id async for m in client.models.list()]
        assert models == ["helpdesk"]
        with pytest.raises(openai.NotFoundError) as raised:
            await client.chat.completions.create(model="gpt-4o", messages=QUESTION)
    assert raised.value.code == "NOT_FOUND"


async def test_a_bad_token_is_an_authentication_error(upstream: FakeUpstream) -> None:
    async with client_for(upstream, token="not-a-jwt") as (client, _):
        with pytest.raises(openai.AuthenticationError) as raised:
            await client.chat.completions.create(model="agent-chat", messages=QUESTION)
        with pytest.raises(openai.AuthenticationError):
            await client.models.list()
    assert raised.value.status_code == 401
    assert raised.value.code == "UNAUTHORIZED"
    assert raised.value.type == "authentication_error"


async def test_over_the_limit_is_a_rate_limit_error_with_retry_after(
    upstream: FakeUpstream,
) -> None:
    upstream.script = sql_answer()
    async with client_for(upstream, limit_user_requests=1) as (client, _):
        await client.chat.completions.create(model="agent-chat", messages=QUESTION)
        with pytest.raises(openai.RateLimitError) as raised:
            await client.chat.completions.create(
                model="agent-chat",
                messages=QUESTION,
                stream=True,
            )
    error = raised.value
    assert error.code == "RATE_LIMITED" and error.type == "rate_limit_error"
    assert int(error.response.headers["Retry-After"]) > 0


async def test_a_model_failure_mid_stream_raises_in_the_sdk(upstream: FakeUpstream) -> None:
    upstream.script = [
        RouteDecisionEvent(route="general", confidence=1, reason="chat"),
        TokenEvent(channel="final", content="Partial"),
        ErrorEvent(code="MODEL_UNAVAILABLE", message="The model is unavailable.", retryable=True),
    ]
    received: list[str] = []
    async with client_for(upstream) as (client, _):
        stream = await client.chat.completions.create(
            model="agent-chat",
            messages=QUESTION,
            stream=True,
        )

        async def read_all() -> None:
            async for chunk in stream:
                received.append(chunk.choices[0].delta.content or "")

        with pytest.raises(openai.APIError) as raised:
            await read_all()
    assert "".join(received) == "Partial"
    assert raised.value.message == "The model is unavailable."
    assert raised.value.code == "MODEL_UNAVAILABLE"


async def test_a_model_failure_before_the_answer_is_a_server_error(
    upstream: FakeUpstream,
) -> None:
    upstream.script = [Refuse(503, "MODEL_UNAVAILABLE", "The model is unavailable.")]
    async with client_for(upstream) as (client, _):
        with pytest.raises(openai.InternalServerError) as raised:
            await client.chat.completions.create(model="agent-chat", messages=QUESTION)
    assert raised.value.status_code == 503
    assert raised.value.type == "server_error"


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "assistant", "content": "hi"}],
        [{"role": "user", "content": "   "}],
        [{"role": "user", "content": "x" * 9000}],
    ],
)
async def test_bad_input_is_a_bad_request_error(
    upstream: FakeUpstream, messages: list[ChatCompletionMessageParam]
) -> None:
    async with client_for(upstream) as (client, _):
        with pytest.raises(openai.BadRequestError) as raised:
            await client.chat.completions.create(model="agent-chat", messages=messages)
    assert raised.value.code == "INVALID_REQUEST"
    assert upstream.requests == []
