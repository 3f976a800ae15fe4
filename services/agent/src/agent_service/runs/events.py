"""What a run streams: answer tokens as a small typed tuple, the rare events as contract models.

The graph's nodes write these through LangGraph's custom stream writer; `Runner.run_events`
passes them on in order and ends with exactly one terminal event (`complete` or `error`).
`RunMeta` is the one item that is not an event: what a node adds to `complete.stats`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from contracts.agent_api import (
    Channel,
    CompleteEvent,
    ErrorEvent,
    RouteDecisionEvent,
    Source,
    ToolEndEvent,
    ToolStartEvent,
    Unanswered,
)


class Token(NamedTuple):
    """One piece of streamed text: a tuple, not a model, because there is one per model token."""

    channel: Channel
    content: str


@dataclass(frozen=True, slots=True)
class RunMeta:
    """What a node reports for `complete.stats` (the query it ran, the passages it used)."""

    sql: str | None = None
    row_count: int | None = None
    truncated: bool | None = None
    sources: tuple[Source, ...] | None = None
    unanswered: Unanswered | None = None
    """Why the answer says the question could not be answered (see `RunStats.unanswered`)."""


NodeEvent = RouteDecisionEvent | ToolStartEvent | ToolEndEvent
"""The events nodes emit between tokens."""
TerminalEvent = CompleteEvent | ErrorEvent
RunEvent = Token | NodeEvent | TerminalEvent
"""What `Runner.run_events` yields."""
StreamItem = Token | NodeEvent | RunMeta
"""What nodes write to the graph's custom stream."""
