"""The AG-UI mapping, from tables: which AG-UI events each semantic event becomes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ag_ui.core import RunAgentInput, TextMessageContentEvent
from support.gateway_harness import (
    Comment,
    Die,
    Gate,
    Hang,
    Refuse,
    Sleep,
    Step,
    rag_answer,
    sql_answer,
    stats,
)

from contracts.agent_api import (
    AgentEvent,
    CompleteEvent,
    ErrorEvent,
    RouteDecisionEvent,
    TokenEvent,
    ToolStartEvent,
)
from gateway.agui import AguiState, encode, last_user_text, opening_events, to_agui_events
from gateway.errors import InvalidRequest


def _state() -> AguiState:
    return AguiState(thread_id="t-1", run_id="r-1", message_id="m-1")


def _shape(events: list[Any]) -> list[tuple[str, ...]]:
    """Each event as its type and the one field a reader looks at."""
    out: list[tuple[str, ...]] = []
    for event in events:
        data = event.model_dump(by_alias=True, exclude_none=True)
        key = next(
            (
                k
                for k in ("stepName", "delta", "toolCallName", "message", "toolCallId")
                if k in data
            ),
            None,
        )
        out.append((data["type"], str(data[key])) if key else (data["type"],))
    return out


def _events(script: list[Step]) -> list[AgentEvent]:
    return [s for s in script if not isinstance(s, (Comment, Sleep, Die, Hang, Refuse, Gate))]


def _run(events: list[AgentEvent]) -> list[tuple[str, ...]]:
    state = _state()
    out = opening_events(state)
    for event in events:
        out.extend(to_agui_events(event, state))
    return _shape(out)


SQL_RUN = [
    ("RUN_STARTED",),
    ("STEP_STARTED", "classify"),
    ("STEP_FINISHED", "classify"),
    ("STEP_STARTED", "sql"),
    ("TOOL_CALL_START", "sql_query"),
    ("TOOL_CALL_ARGS", '{"input": "SELECT count(*) ..."}'),
    ("TOOL_CALL_END", "call-1"),
    ("TOOL_CALL_RESULT", "call-1"),
    ("STEP_FINISHED", "sql"),
    ("STEP_STARTED", "finalize"),
    ("TEXT_MESSAGE_START",),
    ("TEXT_MESSAGE_CONTENT", "There"),
    ("TEXT_MESSAGE_CONTENT", " are"),
    ("TEXT_MESSAGE_CONTENT", " 4."),
    ("TEXT_MESSAGE_END",),
    ("STEP_FINISHED", "finalize"),
    ("RUN_FINISHED",),
]


def test_a_data_answer_is_steps_a_tool_call_and_one_text_message() -> None:
    assert _run(_events(sql_answer())) == SQL_RUN


def test_a_document_answer_runs_the_rag_step_and_reports_its_search() -> None:
    assert _run(_events(rag_answer()))[2:8] == [
        ("STEP_FINISHED", "classify"),
        ("STEP_STARTED", "rag"),
        ("TOOL_CALL_START", "document_search"),
        ("TOOL_CALL_ARGS", '{"input": "warranty"}'),
        ("TOOL_CALL_END", "call-9"),
        ("TOOL_CALL_RESULT", "call-9"),
    ]


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param(
            [RouteDecisionEvent(route="general", confidence=1, reason="chat")],
            [("STEP_FINISHED", "classify"), ("STEP_STARTED", "finalize")],
            id="a direct answer goes straight to finalize",
        ),
        pytest.param(
            [
                TokenEvent(channel="classify", content="thinking"),
                TokenEvent(channel="final", content=""),
            ],
            [],
            id="reasoning and empty deltas are not carried",
        ),
        pytest.param(
            [
                TokenEvent(channel="final", content="Hi"),
                ErrorEvent(code="MODEL_ERROR", message="down"),
            ],
            [
                ("STEP_FINISHED", "classify"),
                ("STEP_STARTED", "finalize"),
                ("TEXT_MESSAGE_START",),
                ("TEXT_MESSAGE_CONTENT", "Hi"),
                ("RUN_ERROR", "down"),
            ],
            id="a failure mid-answer ends the run with RUN_ERROR",
        ),
        pytest.param(
            [
                ErrorEvent(code="CANCELLED", message="Stopped."),
                TokenEvent(channel="final", content="late"),
            ],
            [("RUN_ERROR", "Stopped.")],
            id="nothing after the run ends",
        ),
        pytest.param(
            [
                TokenEvent(channel="final", content="a"),
                ToolStartEvent(tool="sql_query", call_id="c2", input=None),
            ],
            [
                ("STEP_FINISHED", "classify"),
                ("STEP_STARTED", "finalize"),
                ("TEXT_MESSAGE_START",),
                ("TEXT_MESSAGE_CONTENT", "a"),
                ("TEXT_MESSAGE_END",),
                ("STEP_FINISHED", "finalize"),
                ("STEP_STARTED", "sql"),
                ("TOOL_CALL_START", "sql_query"),
                ("TOOL_CALL_ARGS", '{"input": null}'),
                ("TOOL_CALL_END", "c2"),
            ],
            id="a tool call after text closes the message first",
        ),
    ],
)
def test_mapping_table(events: list[AgentEvent], expected: list[tuple[str, ...]]) -> None:
    assert _run(events)[2:] == expected


def test_run_finished_carries_the_answer_s_provenance_and_usage() -> None:
    state = _state()
    (finished,) = to_agui_events(CompleteEvent(stats=stats(conversation_id="t-1")), state)[-1:]
    data = finished.model_dump(by_alias=True, exclude_none=True)
    assert data["threadId"] == "t-1" and data["runId"] == "r-1"
    assert data["result"]["sql"].startswith("SELECT count(*)")
    assert data["usage"] == [{"inputTokens": 10, "outputTokens": 5, "totalTokens": 15}]
    assert "unanswered" not in data["result"]


def test_run_finished_says_why_a_run_could_not_answer() -> None:
    done = CompleteEvent(stats=stats(sql=None, row_count=None, unanswered="no_query"))
    (finished,) = to_agui_events(done, _state())[-1:]
    assert finished.model_dump(by_alias=True, exclude_none=True)["result"]["unanswered"] == (
        "no_query"
    )


def _input(messages: list[dict[str, Any]]) -> RunAgentInput:
    return RunAgentInput.model_validate(
        {
            "threadId": "t",
            "runId": "r",
            "messages": messages,
            "tools": [],
            "context": [],
            "state": {},
        }
    )


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([{"id": "1", "role": "user", "content": " Hi "}], "Hi"),
        (
            [
                {"id": "1", "role": "user", "content": "first"},
                {"id": "2", "role": "assistant", "content": "ok"},
                {"id": "3", "role": "user", "content": [{"type": "text", "text": "second"}]},
            ],
            "second",
        ),
    ],
)
def test_the_question_is_the_last_user_message(
    messages: list[dict[str, Any]], expected: str
) -> None:
    assert last_user_text(_input(messages)) == expected


@pytest.mark.parametrize(
    "messages",
    [
        [],
        [{"id": "1", "role": "assistant", "content": "hi"}],
        [{"id": "1", "role": "user", "content": "  "}],
    ],
)
def test_a_run_without_a_question_is_refused(messages: list[dict[str, Any]]) -> None:
    with pytest.raises(InvalidRequest):
        last_user_text(_input(messages))


@pytest.mark.parametrize("delta", ["There", ' "quoted" \\ back', "naïve ✓ \u2028 \n", "</script>"])
def test_the_hand_written_token_frame_is_the_model_s_own_json(delta: str) -> None:
    state = _state()
    to_agui_events(TokenEvent(channel="final", content="x"), state)
    (event,) = to_agui_events(TokenEvent(channel="final", content=delta), state)
    fast = encode(event)
    assert fast.startswith(b"data: ") and fast.endswith(b"\n\n")
    own = event.model_dump_json(by_alias=True, exclude_none=True)
    assert json.loads(fast[6:]) == json.loads(own)
    assert TextMessageContentEvent.model_validate_json(fast[6:]) == TextMessageContentEvent(
        message_id="m-1", delta=delta
    )
