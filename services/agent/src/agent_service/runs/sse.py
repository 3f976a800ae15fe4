"""Run events → SSE frames: `encode_frame(event, seq)`, pure, on the per-token path.

A token is written by hand (one f-string and one JSON string encode); every other event is its
contract model's JSON. Both give the same bytes as `contracts.sse.encode_event` of the event's JSON.
"""

from __future__ import annotations

import json
from typing import Final

from agent_service.runs.events import RunEvent, Token
from contracts.sse import encode_comment, encode_event

_dumps: Final = json.JSONEncoder(ensure_ascii=False).encode
HEARTBEAT: Final = encode_comment("heartbeat")
_SPARSE: Final = frozenset({"tool_start", "tool_end"})
"""Events whose optional fields (`input`, `table`) are left out when unset, not sent as null."""


class FinalBytes(bytes):
    """The last bytes of a stream: the response sends them with its end (one write, so a client
    sees the terminal event and the end of the body together and can reuse the connection)."""


def encode_frame(event: RunEvent, seq: int) -> bytes:
    """One event as an SSE frame with id `seq`: `id: N\\nevent: X\\ndata: {json}\\n\\n`."""
    if isinstance(event, Token):
        return (
            f"id: {seq}\nevent: token\ndata: "
            f'{{"event":"token","channel":"{event.channel}","content":{_dumps(event.content)}}}\n\n'
        ).encode()
    return encode_event(
        event.event, event.model_dump_json(exclude_none=event.event in _SPARSE), seq
    )
