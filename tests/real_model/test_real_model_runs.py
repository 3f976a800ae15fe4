"""The agent service against a real (tiny) model behind llama.cpp's OpenAI-compatible server:
what must hold whatever the model says."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
from support.llama_server import LlamaServer
from support.real_model_harness import RUN_DEADLINE_S, agent, lane_settings
from support.sse_client import StreamResult, stream_chat

from agent_service.app import create_app
from agent_service.providers.openai.format_check import StructuredOutputUnsupported
from agent_service.providers.openai.provider import NO_QUERY
from agent_service.settings import DEV_INTERNAL_SECRET
from contracts.errors import ErrorCode
from contracts.internal_token import mint_internal_token
from contracts.sse import SSEDecoder

pytestmark = pytest.mark.real_model

TENANT = "acme-hvac"
SLACK_S = 5.0
"""Beyond the run deadline: the error event's own write, and the service's shutdown of the run."""
CODES = {code.value for code in ErrorCode}


def token() -> str:
    return mint_internal_token(
        user_id="u-alice", company_id=TENANT, issuer="gateway", key=DEV_INTERNAL_SECRET
    )


async def timed(url: str, question: str, conversation: str) -> tuple[StreamResult, float]:
    started = time.monotonic()
    result = await stream_chat(url, token(), question, conversation=conversation)
    return result, time.monotonic() - started


def assert_ends_once(result: StreamResult, elapsed_s: float) -> dict[str, Any]:
    """Exactly one terminal event, last, within the run deadline; a coded error if not complete."""
    assert result.status == 200
    terminals = [e for e in result.events if e["event"] in ("complete", "error")]
    assert terminals == [result.terminal], result.events
    assert elapsed_s <= RUN_DEADLINE_S + SLACK_S
    if result.terminal["event"] == "error":
        assert result.terminal["code"] in CODES
        assert result.terminal["message"]
        if result.terminal["code"] == "MODEL_TIMEOUT":  # a step ran out: the error says which
            assert "step)" in result.terminal["message"], result.terminal
    return result.terminal


def assert_tenant_kept(logs: Sequence[Mapping[str, Any]]) -> None:
    """Every query the model wrote went through the guard for the caller's company, and what
    ran was the guarded rewrite (each table a tenant subquery)."""
    queries = [line for line in logs if line.get("event") == "sql_query"]
    for line in queries:
        assert line["tenant"] == TENANT, line
        if line["verdict"] == "ok":
            assert '"company_id" = :tenant_id' in line["executed"], line


@pytest.mark.parametrize(
    "question",
    ["How many technicians are active?", "What is our overtime policy?", "hello there"],
)
async def test_a_run_ends_once_streams_counts_usage_and_never_improvises(
    llama: LlamaServer, data_dir: Path, question: str
) -> None:
    with structlog.testing.capture_logs() as logs:
        async with agent(llama, data_dir) as url:
            result, elapsed = await timed(url, question, "conv-lane")
    terminal = assert_ends_once(result, elapsed)
    assert_tenant_kept(logs)
    if terminal["event"] == "error":
        return  # a coded error within the deadline is an honest end
    stats = terminal["stats"]
    final = [e for e in result.events if e["event"] == "token" and e["channel"] == "final"]
    assert final and stats["tokens"] == len(final)  # streamed in pieces, counted
    assert result.chunks > 1
    assert stats["route"] in ("sql", "rag", "general")
    ran_sql = any(e["tool"] == "sql_query" for e in result.of("tool_start"))
    if stats["route"] == "sql" and not ran_sql:
        # the SQL step's model wrote no query: said plainly, never its own words
        assert result.answer == NO_QUERY
        assert stats["unanswered"] == "no_query"
    if stats["route"] == "rag" and not stats["sources"]:
        assert stats["unanswered"] == "no_passages"
    # every model call's usage adds up (the routing call at least)
    assert stats["usage"]["prompt_tokens"] > 0 and stats["usage"]["completion_tokens"] > 0


async def test_a_client_that_leaves_closes_the_request_to_the_model_server(
    llama: LlamaServer, data_dir: Path
) -> None:
    body = {
        "input": {"message": "What is our overtime policy?"},
        "conversation": {"id": "conv-leave", "user_id": "u-alice", "company_id": TENANT},
    }
    before = llama.log.read_text(errors="replace").count("Disconnected from client")
    async with agent(llama, data_dir, model_answer_max_tokens=400) as url:
        async with aiohttp.ClientSession() as session:
            resp = await session.post(
                f"{url}/internal/chat/stream",
                json=body,
                headers={"Authorization": f"Bearer {token()}"},
            )
            decoder = SSEDecoder()
            finals = 0
            async for chunk in resp.content.iter_any():
                for msg in decoder.feed(chunk):
                    event = json.loads(msg.data)
                    finals += event.get("channel") == "final"
                    assert event["event"] not in ("complete", "error"), event
                if finals >= 2:
                    break
            resp.close()  # the client goes away mid-answer
        # llama-cpp-python's server notes the disconnect when it next writes a chunk
        deadline = time.monotonic() + 30
        after = before
        while after == before and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            after = llama.log.read_text(errors="replace").count("Disconnected from client")
        assert after == before + 1
        # and the server is free at once: the next question is served
        result, elapsed = await timed(url, "hello there", "conv-next")
    assert_ends_once(result, elapsed)


async def test_json_mode_routes_against_this_server(llama: LlamaServer, data_dir: Path) -> None:
    async with agent(llama, data_dir, model_structured_output="json_mode") as url:
        result, elapsed = await timed(url, "hello there", "conv-json")
    terminal = assert_ends_once(result, elapsed)
    assert terminal["event"] == "complete"
    assert result.of("route_decision")


async def test_json_schema_is_refused_at_start_up_with_a_clear_message(
    llama: LlamaServer, data_dir: Path
) -> None:
    """llama-cpp-python's server knows `response_format` `text` and `json_object` only."""
    app = create_app(lane_settings(llama, data_dir, model_structured_output="json_schema"))
    with pytest.raises(StructuredOutputUnsupported) as refused:
        async with app.router.lifespan_context(app):
            pass
    assert "AGENT_MODEL_STRUCTURED_OUTPUT=json_schema" in str(refused.value)
    assert llama.base_url in str(refused.value)


async def test_function_calling_passes_the_start_up_check(
    llama: LlamaServer, data_dir: Path
) -> None:
    app = create_app(lane_settings(llama, data_dir, model_structured_output="function_calling"))
    with structlog.testing.capture_logs() as logs:
        async with app.router.lifespan_context(app):
            pass
    assert any(line["event"] == "model_startup_check_ok" for line in logs)
