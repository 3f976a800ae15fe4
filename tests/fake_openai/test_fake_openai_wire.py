"""The bytes on the wire: chunk shapes, `[DONE]`, non-streaming bodies, errors and `/v1/models`."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from fake_openai import FakeSettings, Match, Reply, Rule, Script, ToolCall, running_fake_openai
from fake_openai.wire import dumps

SCRIPT = Script(
    rules=(
        Rule(
            match=Match(last_user="tools"),
            reply=Reply.tools(
                ToolCall("lookup", {"q": "active technicians"}, id="call_a"),
                ToolCall("count", '{"table": "jobs"}'),
            ),
        ),
    ),
    default=Rule(reply=Reply.text("Hello, wide world!")),
)
USER = [{"role": "user", "content": "hi"}]


def _events(raw: bytes) -> list[str]:
    """Split an SSE body into its `data:` payloads, checking the framing on the way."""
    assert raw.endswith(b"\n\n")
    frames = raw.decode().split("\n\n")[:-1]
    assert all(f.startswith("data: ") and "\n" not in f for f in frames)
    return [f.removeprefix("data: ") for f in frames]


async def _post(base_url: str, body: Any, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(f"{base_url}/chat/completions", json=body, **kwargs)


async def test_content_stream_frames() -> None:
    async with running_fake_openai(SCRIPT) as fake:
        body = {"model": "m-1", "messages": USER, "stream": True, "unknown_field": [1, 2]}
        response = await _post(fake.base_url, body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    events = _events(response.content)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
        assert "usage" not in chunk
    assert len({(c["id"], c["created"], c["model"]) for c in chunks}) == 1
    assert chunks[0]["model"] == "m-1"
    assert chunks[0]["object"] == "chat.completion.chunk"
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    deltas = [c["choices"][0]["delta"]["content"] for c in chunks[1:-1]]
    assert deltas == ["Hello", ",", " wide", " world", "!"]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None] * 6 + ["stop"]
    assert chunks[-1]["choices"][0]["delta"] == {}


async def test_usage_chunk_comes_last_with_empty_choices() -> None:
    async with running_fake_openai(SCRIPT) as fake:
        body = {
            "messages": USER,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        response = await _post(fake.base_url, body)
    events = _events(response.content)
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["usage"] is None for c in chunks[:-1])
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["completion_tokens"] == 5
    # One message of one token, plus 4 framing tokens, plus 3 priming tokens.
    assert usage_chunk["usage"]["prompt_tokens"] == 8
    assert usage_chunk["usage"]["total_tokens"] == 13
    assert chunks[0]["model"] == "fake-model"


async def test_tool_call_stream_frames() -> None:
    async with running_fake_openai(SCRIPT) as fake:
        body = {"messages": [{"role": "user", "content": "use tools"}], "stream": True}
        response = await _post(fake.base_url, body)
    chunks = [json.loads(e) for e in _events(response.content)[:-1]]
    assert chunks[0]["choices"][0]["delta"]["content"] is None
    calls = [tc for c in chunks for tc in c["choices"][0]["delta"].get("tool_calls", [])]
    openers = [tc for tc in calls if "id" in tc]
    assert openers == [
        {
            "index": 0,
            "id": "call_a",
            "type": "function",
            "function": {"name": "lookup", "arguments": ""},
        },
        {
            "index": 1,
            "id": "call_1_1",
            "type": "function",
            "function": {"name": "count", "arguments": ""},
        },
    ]
    for index, expected in [(0, '{"q": "active technicians"}'), (1, '{"table": "jobs"}')]:
        pieces = [
            tc["function"]["arguments"] for tc in calls if tc["index"] == index and "id" not in tc
        ]
        assert len(pieces) > 2
        assert all(set(tc) == {"index", "function"} for tc in calls if "id" not in tc)
        assert "".join(pieces) == expected
    assert chunks[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "tool_calls",
    }


async def test_non_streaming_body() -> None:
    async with running_fake_openai(SCRIPT) as fake:
        text = await _post(fake.base_url, {"model": "m", "messages": USER, "stream": False})
        tools = await _post(fake.base_url, {"messages": [{"role": "user", "content": "tools"}]})
    completion = ChatCompletion.model_validate(text.json())
    assert completion.choices[0].message.content == "Hello, wide world!"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 5
    called = ChatCompletion.model_validate(tools.json()).choices[0]
    assert called.finish_reason == "tool_calls"
    assert called.message.content is None
    assert [
        (c.function.name, c.function.arguments)
        for c in called.message.tool_calls or []
        if c.type == "function"
    ] == [("lookup", '{"q": "active technicians"}'), ("count", '{"table": "jobs"}')]


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"model": "m"}', "Missing required parameter: 'messages'"),
        (b'{"messages": []}', "non-empty array"),
        (b'{"messages": [{"content": "no role"}]}', "messages[0]"),
        (b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}', "max_tokens"),
    ],
)
async def test_bad_requests_get_an_openai_error_body(raw: bytes, fragment: str) -> None:
    async with running_fake_openai(SCRIPT) as fake, httpx.AsyncClient() as client:
        response = await client.post(
            f"{fake.base_url}/chat/completions",
            content=raw,
            headers={"content-type": "application/json"},
        )
        recorded = list(fake.state.requests)
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert fragment in error["message"]
    assert error["type"] == "invalid_request_error"
    assert recorded[0].rule is None


async def test_oversized_body_is_refused_with_413() -> None:
    settings = FakeSettings(max_body_bytes=100)
    async with running_fake_openai(SCRIPT, settings=settings) as fake:
        big = [{"role": "user", "content": "x" * 200}]
        response = await _post(fake.base_url, {"messages": big})
    assert response.status_code == 413
    assert "exceeds 100 bytes" in response.json()["error"]["message"]


async def test_models_are_listed() -> None:
    settings = FakeSettings(models=("gpt-fake", "gpt-fake-mini"))
    async with running_fake_openai(settings=settings) as fake, httpx.AsyncClient() as client:
        listed = (await client.get(f"{fake.base_url}/models")).json()
    assert listed["object"] == "list"
    assert [m["id"] for m in listed["data"]] == ["gpt-fake", "gpt-fake-mini"]


async def test_requests_are_recorded_without_credentials() -> None:
    async with running_fake_openai(SCRIPT) as fake:
        await _post(
            fake.base_url,
            {"messages": USER, "extra": True},
            headers={"authorization": "Bearer sk-secret", "x-trace": "t1"},
        )
        async with httpx.AsyncClient() as client:
            listed = (await client.get(f"{fake.origin}/_fake/requests")).json()
    (recorded,) = listed["requests"]
    assert recorded["body"] == {"messages": USER, "extra": True}
    assert recorded["headers"]["x-trace"] == "t1"
    assert "authorization" not in recorded["headers"]
    assert "sk-secret" not in json.dumps(listed)
    assert recorded["path"] == "/v1/chat/completions"
    assert recorded["rule"] == "default"
    assert listed["total"] == 1


async def test_long_unpaced_stream_arrives_whole() -> None:
    script = Script(default=Rule(reply=Reply.filler(5000)))
    async with running_fake_openai(script) as fake:
        body = {"messages": USER, "stream": True, "stream_options": {"include_usage": True}}
        response = await _post(fake.base_url, body)
    chunks = [json.loads(e) for e in _events(response.content)[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert len(chunks) == 5003
    assert chunks[-1]["usage"]["completion_tokens"] == 5000
    assert text.startswith("the quick brown fox")


def test_a_lone_surrogate_is_sent_as_a_json_escape_not_a_500() -> None:
    # A scripted reply may hold one (to test the agent against it); UTF-8 cannot encode it.
    assert dumps({"arguments": '{"sql": "SELECT \ud800"}'}) == (
        b'{"arguments":"{\\"sql\\": \\"SELECT \\ud800\\"}"}'
    )
    assert dumps("caf\u00e9") == '"café"'.encode()  # everything else stays UTF-8
