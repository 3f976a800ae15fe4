"""Rules: matching, order, one-shot use, the file format and the runtime control endpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from fake_openai import (
    Fault,
    Match,
    Reply,
    Rule,
    Script,
    ScriptError,
    Timing,
    load_script,
    parse_script,
    running_fake_openai,
)
from fake_openai.knobs import Pace
from fake_openai.request import ChatRequest, parse_chat_request
from fake_openai.script import select_rule


def _request(**body: Any) -> ChatRequest:
    body.setdefault("messages", [{"role": "user", "content": "hi"}])
    return parse_chat_request(json.dumps(body).encode(), default_model="fake-model")


CONVERSATION = [
    {"role": "system", "content": "You are the SQL agent."},
    {"role": "user", "content": "How many technicians?"},
    {"role": "assistant", "content": None, "tool_calls": []},
    {"role": "tool", "tool_call_id": "c1", "content": "42"},
    {
        "role": "user",
        "content": [{"type": "text", "text": "And jobs"}, {"type": "text", "text": "?"}],
    },
]
TOOLS = [{"type": "function", "function": {"name": "run_sql", "parameters": {}}}]


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        (Match(), True),
        (Match(last_user="And jobs?"), True),
        (Match(last_user="technicians"), False),
        (Match(last_user_regex=r"(?i)^and JOBS"), True),
        (Match(system="SQL agent"), True),
        (Match(system="RAG agent"), False),
        (Match(system_regex=r"SQL\s+agent"), True),
        (Match(any_message="technicians"), True),
        (Match(any_message="invoices"), False),
        (Match(any_message_regex=r"^\d+$"), True),
        (Match(model="gpt-4o"), True),
        (Match(model="gpt-4o-mini"), False),
        (Match(model_regex=r"^gpt-4"), True),
        (Match(has_tools=True), True),
        (Match(has_tools=False), False),
        (Match(tool="run_sql"), True),
        (Match(tool="search_docs"), False),
        (Match(has_tool_choice=True), False),
        (Match(has_tool_choice=False), True),
        (Match(has_response_format=False), True),
        (Match(tool_results=1), True),
        (Match(tool_results=0), False),
        (Match(min_tool_results=1), True),
        (Match(min_tool_results=2), False),
        (Match(stream=True), True),
        (Match(stream=True, tool_results=0), False),
    ],
)
def test_match_conditions(match: Match, expected: bool) -> None:
    request = _request(model="gpt-4o", messages=CONVERSATION, tools=TOOLS, stream=True)
    assert match.matches(request) is expected


def test_first_match_wins_and_one_shot_rules_are_used_up() -> None:
    script = Script(
        rules=(
            Rule(name="once", match=Match(last_user="hi"), reply=Reply.text("a"), times=1),
            Rule(name="twice", match=Match(last_user="hi"), reply=Reply.text("b"), times=2),
            Rule(name="other", match=Match(last_user="bye"), reply=Reply.text("c")),
        ),
        default=Rule(name="fallback", reply=Reply.text("d")),
    )
    uses = [0, 0, 0]
    picked = [select_rule(script, uses, _request()).name for _ in range(5)]
    assert picked == ["once", "twice", "twice", "fallback", "fallback"]
    bye = _request(messages=[{"role": "user", "content": "bye"}])
    assert select_rule(script, uses, bye).name == "other"


def test_timing_resolves_rule_over_script_over_settings() -> None:
    pace = Pace.resolve(Timing(tps=50), Timing(tps=10, chunk_tokens=3), Timing(ttft_ms=200))
    assert pace == Pace(ttft_ms=200, tps=50, chunk_tokens=3, chunk_chars=0)


SCRIPT_DOC = {
    "timing": {"ttft_ms": 0, "chunk_tokens": 2},
    "rules": [
        {
            "name": "weather",
            "match": {"last_user": "weather", "has_tools": True},
            "reply": {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
            "times": 1,
        },
        {"name": "limit", "match": {"model": "busy"}, "reply": {"error": {"status": 429}}},
        {
            "name": "json",
            "reply": {"json": {"ok": True}},
            "match": {"has_response_format": True},
        },
        {
            "name": "broken",
            "reply": {"content": "x y z"},
            "fault": {"mode": "drop", "after_chunks": 2},
        },
    ],
    "default": {"reply": {"content": "Fallback."}, "timing": {"tps": 100}},
}


def test_script_file_format_parses_every_kind_of_rule() -> None:
    script = parse_script(SCRIPT_DOC)
    weather, limit, as_json, broken = script.rules
    assert weather.times == 1
    assert weather.reply.tool_calls[0].arguments == {"city": "Paris"}
    assert limit.reply.error is not None
    assert limit.reply.error.status == 429
    assert as_json.reply.json_value == {"ok": True}
    assert broken.fault == Fault("drop", 2)
    assert script.default.reply.content == "Fallback."
    assert script.timing == Timing(ttft_ms=0, chunk_tokens=2)


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ({"rulez": []}, "unknown keys ['rulez']"),
        ({"rules": [{"reply": {"content": "x"}, "match": {"last_usr": "x"}}]}, "rules[0].match"),
        ({"rules": [{"match": {}}]}, "rules[0] needs a reply"),
        ({"rules": [{"reply": {}}]}, "rules[0].reply needs one of"),
        ({"rules": [{"reply": {"content": "a", "json": 1}}]}, "exactly one of"),
        ({"rules": [{"reply": {"content": "a"}, "times": 0}]}, "times must be >= 1"),
        ({"rules": [{"reply": {"content": "a"}, "match": {"last_user_regex": "("}}]}, "regular"),
        ({"rules": [{"reply": {"error": {"status": 200}}}]}, "error status"),
        ({"rules": [{"reply": {"content": "a"}, "fault": {"mode": "explode"}}]}, "fault.mode"),
        ({"rules": [{"reply": {"content": "a"}, "timing": {"tps": -1}}]}, "tps must be >= 0"),
        ({"rules": [{"reply": {"tool_calls": [{"arguments": {}}]}}]}, "name must be"),
        ([], "script must be an object"),
    ],
)
def test_bad_scripts_say_what_is_wrong(doc: Any, fragment: str) -> None:
    with pytest.raises(ScriptError) as caught:
        parse_script(doc)
    assert fragment in str(caught.value)


def test_scripts_load_from_json_and_yaml_files(tmp_path: Path) -> None:
    as_json = tmp_path / "script.json"
    as_json.write_text(json.dumps(SCRIPT_DOC))
    as_yaml = tmp_path / "script.yaml"
    as_yaml.write_text(
        "rules:\n"
        "  - name: hello\n"
        "    match: {last_user: hello}\n"
        "    reply: {content: Hi there.}\n"
        "    timing: {tps: 30}\n"
    )
    assert load_script(as_json) == parse_script(SCRIPT_DOC)
    (rule,) = load_script(as_yaml).rules
    assert (rule.name, rule.reply.content, rule.timing) == ("hello", "Hi there.", Timing(tps=30))
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules: [")
    with pytest.raises(ScriptError, match="not valid YAML"):
        load_script(broken)
    with pytest.raises(ScriptError, match="cannot read script"):
        load_script(tmp_path / "missing.json")


async def _chat(client: httpx.AsyncClient, base_url: str, text: str) -> str:
    body = {"messages": [{"role": "user", "content": text}]}
    response = await client.post(f"{base_url}/chat/completions", json=body)
    content: str = response.json()["choices"][0]["message"]["content"]
    return content


async def test_script_is_replaced_and_reset_over_http() -> None:
    initial = Script(default=Rule(reply=Reply.text("initial")))
    new = {
        "rules": [{"match": {"last_user": "ping"}, "reply": {"content": "pong"}, "times": 1}],
        "default": {"reply": {"content": "new default"}},
    }
    async with running_fake_openai(initial) as fake, httpx.AsyncClient() as client:
        assert await _chat(client, fake.base_url, "ping") == "initial"
        replaced = await client.post(f"{fake.origin}/_fake/script", json=new)
        assert replaced.json() == {"rules": 1}
        assert await _chat(client, fake.base_url, "ping") == "pong"
        assert await _chat(client, fake.base_url, "ping") == "new default"
        # Replacing the script again gives one-shot rules their use back.
        await client.post(f"{fake.origin}/_fake/script", json=new)
        assert await _chat(client, fake.base_url, "ping") == "pong"
        assert len(fake.state.requests) == 4

        bad = await client.post(f"{fake.origin}/_fake/script", json={"rules": [{"match": {}}]})
        assert bad.status_code == 400
        assert "needs a reply" in bad.json()["error"]["message"]
        assert await _chat(client, fake.base_url, "ping") == "new default"

        reset = await client.post(f"{fake.origin}/_fake/reset")
        assert reset.status_code == 200
        assert len(fake.state.requests) == 0
        assert (await client.get(f"{fake.origin}/_fake/requests")).json()["requests"] == []
        assert await _chat(client, fake.base_url, "ping") == "initial"


async def test_in_process_state_changes_the_script_too() -> None:
    async with running_fake_openai() as fake, httpx.AsyncClient() as client:
        assert await _chat(client, fake.base_url, "hi") == "This is a fake response."
        fake.state.set_script(Script(default=Rule(reply=Reply.text("changed"))))
        assert await _chat(client, fake.base_url, "hi") == "changed"
        recorded = await fake.state.wait_for_requests(2)
    assert [r.body["messages"][0]["content"] for r in recorded] == ["hi", "hi"]


def test_the_documented_example_script_loads(tmp_path: Path) -> None:
    doc = Path(__file__).parents[2] / "docs" / "fake-openai.md"
    example = doc.read_text().split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "example.yaml"
    path.write_text(example)
    script = load_script(path)
    assert len(script.rules) == 6
    assert script.rules[0].reply.tool_calls[1].id == "call_7"
    assert script.rules[5].fault == Fault("drop", 3)
