"""The semantic → UI event mapping, from a table; and the wire JSON of UI events."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support.gateway_harness import stats

from contracts.agent_api import (
    AgentEvent,
    CompleteEvent,
    ErrorEvent,
    ResultTable,
    RouteDecisionEvent,
    Source,
    TokenEvent,
    ToolEndEvent,
    ToolStartEvent,
)
from contracts.ui_events import UI_EVENT_ADAPTER, ErrorUiEvent, ReasoningUiEvent, TokenUiEvent
from gateway.ui_mapping import (
    MappingState,
    opening_events,
    reasoning_ui_event,
    to_ui_events,
    token_ui_event,
)
from gateway.ui_wire import sse_frame, ui_event_json

ROUTING = {"type": "progress", "step": "agent_routing", "message": "Routing your question…"}
QUERYING = {"type": "progress", "step": "querying_data", "message": "Querying data…"}
SEARCHING = {"type": "progress", "step": "rag_retrieval", "message": "Searching documents…"}
WRITING = {"type": "progress", "step": "generating", "message": "Writing the answer…"}

# (state before: the last step shown, event, UI events expected)
TABLE: list[tuple[str | None, AgentEvent, list[dict[str, Any]]]] = [
    (
        "agent_routing",
        RouteDecisionEvent(route="sql", confidence=0.9, reason="numbers"),
        [
            {
                "type": "route",
                "route": "sql",
                "confidence": 0.9,
                "reason": "numbers",
                "label": "Answering from your company's data",
            },
            QUERYING,
        ],
    ),
    (
        "agent_routing",
        RouteDecisionEvent(route="rag", confidence=0.7, reason="policy"),
        [
            {
                "type": "route",
                "route": "rag",
                "confidence": 0.7,
                "reason": "policy",
                "label": "Answering from your documents",
            },
            SEARCHING,
        ],
    ),
    (
        "agent_routing",
        RouteDecisionEvent(route="general", confidence=0.6, reason="chit-chat"),
        [
            {
                "type": "route",
                "route": "general",
                "confidence": 0.6,
                "reason": "chit-chat",
                "label": "Answering directly",
            },
            WRITING,
        ],
    ),
    (
        "querying_data",
        ToolStartEvent(tool="sql_query", call_id="c1", input="SELECT 1"),
        [
            {
                "type": "tool_start",
                "call_id": "c1",
                "tool": "sql_query",
                "label": "Querying data…",
                "input": "SELECT 1",
            }
        ],
    ),
    (
        "agent_routing",
        ToolStartEvent(tool="document_search", call_id="c2"),
        [
            SEARCHING,
            {
                "type": "tool_start",
                "call_id": "c2",
                "tool": "document_search",
                "label": "Searching documents…",
            },
        ],
    ),
    (
        "querying_data",
        ToolStartEvent(tool="calculator", call_id="c3"),
        [
            {
                "type": "tool_start",
                "call_id": "c3",
                "tool": "calculator",
                "label": "Running calculator…",
            }
        ],
    ),
    (
        "querying_data",
        ToolEndEvent(
            tool="sql_query", call_id="c1", status="ok", summary="4 rows", duration_ms=12.5
        ),
        [
            {
                "type": "tool_end",
                "call_id": "c1",
                "tool": "sql_query",
                "status": "ok",
                "summary": "4 rows",
                "duration_ms": 12.5,
            }
        ],
    ),
    (
        "querying_data",
        ToolEndEvent(
            tool="sql_query",
            call_id="c4",
            status="ok",
            summary="3 rows",
            duration_ms=4.0,
            input="SELECT status, count(*) FROM jobs GROUP BY status",
            table=ResultTable(
                columns=["status", "jobs"],
                rows=[["open", 4], ["done", 12.5], [None, True]],
                row_count=3,
            ),
        ),
        [
            {
                "type": "tool_end",
                "call_id": "c4",
                "tool": "sql_query",
                "status": "ok",
                "summary": "3 rows",
                "duration_ms": 4.0,
                "table": {
                    "columns": ["status", "jobs"],
                    "rows": [["open", 4], ["done", 12.5], [None, True]],
                    "row_count": 3,
                    "capped": False,
                },
            }
        ],
    ),
    (
        "querying_data",
        TokenEvent(channel="sql_agent", content="Counting…"),
        [{"type": "reasoning", "channel": "sql_agent", "token": "Counting…"}],
    ),
    (
        "rag_retrieval",
        TokenEvent(channel="rag_agent", content="Reading 2 passages"),
        [{"type": "reasoning", "channel": "rag_agent", "token": "Reading 2 passages"}],
    ),
    (
        "querying_data",
        TokenEvent(channel="final", content="There"),
        [WRITING, {"type": "token", "token": "There"}],
    ),
    (
        "generating",
        TokenEvent(channel="final", content=' "quoted" ✓\n'),
        [{"type": "token", "token": ' "quoted" ✓\n'}],
    ),
    (
        "generating",
        ErrorEvent(code="MODEL_TIMEOUT", message="The model took too long.", retryable=True),
        [
            {
                "type": "error",
                "code": "MODEL_TIMEOUT",
                "error": "The model took too long.",
                "message": "The model took too long.",
                "retryable": True,
            }
        ],
    ),
]


@pytest.mark.parametrize(("step", "event", "expected"), TABLE)
def test_each_semantic_event_maps_to_its_ui_events(
    step: str | None, event: AgentEvent, expected: list[dict[str, Any]]
) -> None:
    state = MappingState(conversation_id="conv-1", step=step)  # type: ignore[arg-type]
    produced = to_ui_events(event, state)
    assert [json.loads(ui_event_json(e)) for e in produced] == expected
    for e in produced:  # the fast path renders what the models would validate
        UI_EVENT_ADAPTER.validate_json(ui_event_json(e))


def test_a_whole_run() -> None:
    state = MappingState(conversation_id="conv-9")
    opening = opening_events(state, message_id="msg-1", request_id="req-12345678")
    assert [json.loads(ui_event_json(e)) for e in opening] == [
        {
            "type": "start",
            "conversation_id": "conv-9",
            "session_id": "conv-9",
            "message_id": "msg-1",
            "request_id": "req-12345678",
        },
        ROUTING,
    ]
    events: list[AgentEvent] = [
        RouteDecisionEvent(route="rag", confidence=0.8, reason="docs"),
        TokenEvent(channel="final", content="One "),
        TokenEvent(channel="final", content="year."),
        CompleteEvent(
            stats=stats(
                conversation_id="conv-9",
                route="rag",
                sql=None,
                row_count=None,
                sources=[Source(doc_id="d", title="Warranty", chunk_id="c")],
            )
        ),
        TokenEvent(channel="final", content="ignored after the end"),
    ]
    produced = [json.loads(ui_event_json(e)) for ev in events for e in to_ui_events(ev, state)]
    sources, complete = produced[-2:]
    assert sources["type"] == "sources" and sources["sources"][0]["title"] == "Warranty"
    assert complete["type"] == "complete"
    assert complete["response"] == "One year."
    assert complete["metadata"] == {
        "agent": "rag_agent",
        "route": "rag",
        "confidence": 0.8,
        "context": {"sources": ["Warranty"]},
    }
    assert complete["stats"]["usage"]["total_tokens"] == 15
    assert not any(e.get("token") == "ignored after the end" for e in produced)


def test_a_data_answer_carries_its_sql_and_row_count() -> None:
    state = MappingState(conversation_id="conv-1", route="sql")
    produced = to_ui_events(CompleteEvent(stats=stats(row_count=7, truncated=False)), state)
    sql = json.loads(ui_event_json(produced[0]))
    assert sql == {
        "type": "sql",
        "sql": "SELECT count(*) FROM technicians WHERE active = 1",
        "row_count": 7,
        "truncated": False,
    }
    assert json.loads(ui_event_json(produced[-1]))["metadata"]["row_count"] == 7


def test_why_a_run_could_not_answer_reaches_the_ui_in_its_stats() -> None:
    state = MappingState(conversation_id="conv-1", route="sql")
    done = CompleteEvent(stats=stats(sql=None, row_count=None, unanswered="queries_failed"))
    complete = json.loads(ui_event_json(to_ui_events(done, state)[-1]))
    assert complete["stats"]["unanswered"] == "queries_failed"


def test_sse_frames_name_the_event_and_number_it() -> None:
    frame = sse_frame(TokenUiEvent.model_construct(token="a\nb"), 7)
    assert frame == b'id: 7\nevent: token\ndata: {"type":"token","token":"a\\nb"}\n\n'
    error = ErrorUiEvent(code="X", error="m", message="m", retry_after=3.0)
    assert json.loads(ui_event_json(error))["retry_after"] == 3.0


def test_the_fast_token_constructors_equal_the_validated_models() -> None:
    token = token_ui_event("héllo")
    assert token == TokenUiEvent(token="héllo")
    assert token.model_dump() == TokenUiEvent(token="héllo").model_dump()
    assert token.model_fields_set == {"token"}
    reasoning = reasoning_ui_event("rag_agent", "reading")
    assert reasoning == ReasoningUiEvent(channel="rag_agent", token="reading")
    assert (
        ui_event_json(reasoning)
        == ReasoningUiEvent(channel="rag_agent", token="reading").model_dump_json()
    )
