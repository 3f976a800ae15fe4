"""How UI events go on the wire: one JSON encode per event, hand-rolled for the per-token ones."""

from __future__ import annotations

import json

from contracts.sse import encode_event
from contracts.ui_events import ReasoningUiEvent, TokenUiEvent, UiEvent

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def ui_event_json(event: UiEvent) -> str:
    """The event's JSON text (None fields left out); the same text goes over SSE and WebSocket."""
    if type(event) is TokenUiEvent:
        head = '{"type":"token","token":' + _dumps(event.token)
        if event.partial_response is None:
            return head + "}"
        return head + ',"partial_response":' + _dumps(event.partial_response) + "}"
    if type(event) is ReasoningUiEvent:
        return (
            '{"type":"reasoning","channel":"'
            + event.channel
            + '","token":'
            + _dumps(event.token)
            + "}"
        )
    return event.model_dump_json(exclude_none=True)


def sse_frame(event: UiEvent, seq: int) -> bytes:
    """One SSE frame: `id: seq`, `event: <type>`, `data: <json>`."""
    return encode_event(event.type, ui_event_json(event), id=seq)
