"""`encode_frame`: every run event becomes the frame its contract JSON gives, tokens included."""

from __future__ import annotations

import json

import pytest

from agent_service.runs.events import RunEvent, Token
from agent_service.runs.sse import encode_frame
from contracts.agent_api import (
    AGENT_EVENT_ADAPTER,
    CompleteEvent,
    ErrorEvent,
    RouteDecisionEvent,
    RunStats,
    TokenEvent,
    ToolEndEvent,
    ToolStartEvent,
)
from contracts.sse import SSEDecoder, encode_event

STATS = RunStats(
    run_id="run-1", conversation_id="c1", route="general", tokens=2, ttft_ms=1.5, duration_ms=9.0
)
EVENTS: list[RunEvent] = [
    Token("final", "plain"),
    Token("final", 'quotes " and \\ backslash, é, 🙂, </script>'),
    Token("sql_agent", "line\nbreak\r\tand \u2028 separators"),
    Token("final", ""),
    RouteDecisionEvent(route="sql", confidence=0.9, reason="numbers"),
    ToolStartEvent(tool="sql_query", call_id="sql-1", input="SELECT 1"),
    ToolEndEvent(tool="sql_query", call_id="sql-1", status="ok", summary="1 row", duration_ms=2.5),
    CompleteEvent(stats=STATS),
    ErrorEvent(code="internal_error", message="the agent failed", retryable=True),
]


def _contract(
    event: RunEvent,
) -> TokenEvent | RouteDecisionEvent | ToolStartEvent | ToolEndEvent | CompleteEvent | ErrorEvent:
    if isinstance(event, Token):
        return TokenEvent(channel=event.channel, content=event.content)
    return event


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_a_frame_is_the_contract_event_with_its_sequence_number(event: RunEvent) -> None:
    model = _contract(event)
    frame = encode_frame(event, 7)
    # optional tool fields (`input`, `table`) are left out when unset rather than sent as null
    sparse = model.event in {"tool_start", "tool_end"}
    assert frame == encode_event(model.event, model.model_dump_json(exclude_none=sparse), 7)
    [message] = SSEDecoder().feed(frame)
    assert (message.id, message.event) == ("7", model.event)
    assert AGENT_EVENT_ADAPTER.validate_python(json.loads(message.data)) == model
