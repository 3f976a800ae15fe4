"""The internal API models accept exactly the contract's shapes and refuse the rest clearly."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from contracts.agent_api import (
    AGENT_EVENT_ADAPTER,
    MAX_ID_CHARS,
    MAX_MESSAGE_CHARS,
    AgentEvent,
    ChatRequest,
    CompleteEvent,
    ErrorEvent,
    RouteDecisionEvent,
    RunStats,
    Source,
    TokenEvent,
    ToolEndEvent,
    ToolStartEvent,
    Usage,
)
from contracts.errors import ErrorBody, ErrorCode, ErrorDetail


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "input": {"message": "How many technicians are active?"},
        "conversation": {"id": "conv-123", "user_id": "user-456", "company_id": "company-789"},
    }
    for path, value in changes.items():
        section, _, key = path.partition("__")
        target = body if not key else body[section]
        name = key or section
        if value is _DROP:
            del target[name]
        else:
            target[name] = value
    return body


_DROP = object()


def _problems(body: dict[str, Any]) -> set[tuple[str, str]]:
    with pytest.raises(ValidationError) as info:
        ChatRequest.model_validate(body)
    return {(".".join(map(str, e["loc"])), e["type"]) for e in info.value.errors()}


def test_the_design_example_is_valid() -> None:
    request = ChatRequest.model_validate(_body())
    assert request.input.message == "How many technicians are active?"
    assert request.conversation.company_id == "company-789"
    assert ChatRequest.model_validate_json(request.model_dump_json()) == request


def test_surrounding_whitespace_is_stripped_and_limits_are_inclusive() -> None:
    request = ChatRequest.model_validate(_body(input__message="  hi \n"))
    assert request.input.message == "hi"
    longest = "x" * MAX_MESSAGE_CHARS
    assert (
        ChatRequest.model_validate(_body(input__message=f"  {longest}  ")).input.message == longest
    )
    long_id = "a" * MAX_ID_CHARS
    ok = _body(
        conversation__id=long_id, conversation__user_id=long_id, conversation__company_id="a"
    )
    assert ChatRequest.model_validate(ok).conversation.id == long_id
    assert ChatRequest.model_validate(_body(conversation__id="a1_.:@-z")).conversation.id


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"input": _DROP}, ("input", "missing")),
        ({"conversation": _DROP}, ("conversation", "missing")),
        ({"input__message": _DROP}, ("input.message", "missing")),
        ({"conversation__id": _DROP}, ("conversation.id", "missing")),
        ({"conversation__user_id": _DROP}, ("conversation.user_id", "missing")),
        ({"conversation__company_id": _DROP}, ("conversation.company_id", "missing")),
        ({"extra": 1}, ("extra", "extra_forbidden")),
        ({"input__stream": True}, ("input.stream", "extra_forbidden")),
        ({"conversation__tenant": "x"}, ("conversation.tenant", "extra_forbidden")),
        ({"input__message": ""}, ("input.message", "string_too_short")),
        ({"input__message": " \t\n "}, ("input.message", "string_too_short")),
        ({"input__message": "x" * (MAX_MESSAGE_CHARS + 1)}, ("input.message", "string_too_long")),
        ({"input__message": 42}, ("input.message", "string_type")),
        ({"conversation__id": ""}, ("conversation.id", "string_too_short")),
        ({"conversation__id": "a b"}, ("conversation.id", "string_pattern_mismatch")),
        ({"conversation__id": "-abc"}, ("conversation.id", "string_pattern_mismatch")),
        ({"conversation__id": "a/b"}, ("conversation.id", "string_pattern_mismatch")),
        ({"conversation__user_id": "usér"}, ("conversation.user_id", "string_pattern_mismatch")),
        (
            {"conversation__company_id": "c\n"},
            ("conversation.company_id", "string_pattern_mismatch"),
        ),
        (
            {"conversation__id": "a" * (MAX_ID_CHARS + 1)},
            ("conversation.id", "string_too_long"),
        ),
        (
            {"conversation__company_id": "c" * (MAX_ID_CHARS + 1)},
            ("conversation.company_id", "string_too_long"),
        ),
    ],
)
def test_invalid_requests_are_refused_with_the_field_named(
    changes: dict[str, Any], problem: tuple[str, str]
) -> None:
    assert problem in _problems(_body(**changes))


def test_a_non_object_body_is_refused() -> None:
    for body in ("[]", "null", '"hi"', "{"):
        with pytest.raises(ValidationError):
            ChatRequest.model_validate_json(body)


STATS = RunStats(
    run_id="run-1",
    conversation_id="conv-1",
    route="rag",
    tokens=12,
    ttft_ms=80.5,
    duration_ms=900.0,
    usage=Usage(prompt_tokens=10, completion_tokens=12, total_tokens=22),
    sources=[Source(doc_id="d1", title="Manual", chunk_id="c3", snippet="...", score=0.7)],
)
EVENTS: list[AgentEvent] = [
    RouteDecisionEvent(route="rag", confidence=0.75, reason="asks about a policy"),
    ToolStartEvent(tool="search_documents", call_id="call-1", input="refund policy"),
    ToolEndEvent(
        tool="search_documents", call_id="call-1", status="ok", summary="3 hits", duration_ms=12.5
    ),
    TokenEvent(channel="final", content="Refunds \u2014 within 30 days.\n"),
    CompleteEvent(stats=STATS),
    ErrorEvent(
        code=ErrorCode.MODEL_TIMEOUT.value, message="The model took too long.", retryable=True
    ),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.event)
def test_events_round_trip_through_json(event: AgentEvent) -> None:
    wire = event.model_dump_json()
    assert f'"event":"{event.event}"' in wire  # every frame's data names its own event
    again = AGENT_EVENT_ADAPTER.validate_json(wire)
    assert again == event
    assert type(again) is type(event)


def _event_errors(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as info:
        AGENT_EVENT_ADAPTER.validate_python(data)
    return [e["type"] for e in info.value.errors()]


def test_discriminator_errors_say_what_is_wrong() -> None:
    assert _event_errors({"event": "progress", "pct": 3}) == ["union_tag_invalid"]
    assert _event_errors({"channel": "final", "content": "x"}) == ["union_tag_not_found"]
    assert _event_errors({"event": "token", "channel": "ui", "content": "x"}) == ["literal_error"]
    assert _event_errors({"event": "token", "channel": "final"}) == ["missing"]
    assert _event_errors({"event": "token", "channel": "final", "content": "x", "label": "y"}) == [
        "extra_forbidden"
    ]
    assert _event_errors(
        {"event": "route_decision", "route": "sql", "confidence": 1.5, "reason": ""}
    ) == ["less_than_equal"]
    assert _event_errors({"event": "tool_end", "tool": "t", "call_id": "c", "status": "maybe",
                          "summary": "", "duration_ms": 1}) == ["literal_error"]  # fmt: skip


def test_error_body_round_trips_and_refuses_unknown_keys() -> None:
    body = ErrorBody(
        error=ErrorDetail(
            code=ErrorCode.INVALID_REQUEST.value,
            message="The request is invalid.",
            request_id="req-1",
            details=[{"field": "input.message", "problem": "too long"}],
        )
    )
    assert ErrorBody.model_validate_json(body.model_dump_json()) == body
    with pytest.raises(ValidationError):
        ErrorBody.model_validate({"error": {"code": "X", "message": "m", "stack": "..."}})
