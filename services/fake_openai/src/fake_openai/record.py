"""What the fake server saw, and the live state tests read and change: `FakeState`."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from fake_openai.request import ChatRequest
from fake_openai.script import Rule, Script, select_rule
from fake_openai.wire import DeltaCache

# Credentials never land in the record, which tests print and other processes fetch over HTTP.
_SECRET_HEADERS = frozenset(
    {"authorization", "api-key", "x-api-key", "cookie", "proxy-authorization"}
)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as received; `body` is the parsed JSON (or None when it was not JSON)."""

    seq: int
    time: float
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    rule: str | None
    """The name of the rule that answered (`default` for the fallback); None if refused."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RecordedDisconnect:
    """A client that closed its connection before the response finished."""

    seq: int
    """The `seq` of the request whose response was cut short."""
    time: float
    path: str
    rule: str | None
    frames_sent: int
    """SSE data frames already sent (0 for a non-streaming request)."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def public_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Request headers without credentials, latin-1 decoded as HTTP defines them."""
    return {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in raw
        if name.decode("latin-1").lower() not in _SECRET_HEADERS
    }


@dataclass
class FakeState:
    """The script in force, the record of requests and disconnects, and waits on them.

    Records are bounded by `max_records` (oldest dropped); the counters keep the true totals.
    """

    script: Script
    max_records: int = 10_000
    requests: deque[RecordedRequest] = field(init=False)
    disconnects: deque[RecordedDisconnect] = field(init=False)
    request_count: int = 0
    disconnect_count: int = 0
    active_responses: int = 0
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the server shuts down: hung responses give up so shutdown never waits on them."""
    deltas: DeltaCache = field(default_factory=DeltaCache)
    _initial: Script = field(init=False)
    _uses: list[int] = field(init=False)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.requests = deque(maxlen=self.max_records)
        self.disconnects = deque(maxlen=self.max_records)
        self._initial = self.script
        self._uses = [0] * len(self.script.rules)

    def set_script(self, script: Script) -> None:
        """Replace the rules; one-shot rules get their uses back."""
        self.script = script
        self._uses = [0] * len(script.rules)

    def reset(self) -> None:
        """Back to the script the app started with, with an empty record."""
        self.set_script(self._initial)
        self.requests.clear()
        self.disconnects.clear()
        self.request_count = 0
        self.disconnect_count = 0
        self._notify()

    def choose(self, request: ChatRequest) -> Rule:
        """The rule that answers `request` (consuming one use of a limited rule)."""
        return select_rule(self.script, self._uses, request)

    def next_seq(self) -> int:
        """A fresh request number (1, 2, …), also used for response and tool-call ids."""
        self.request_count += 1
        return self.request_count

    def record_request(self, request: RecordedRequest) -> None:
        """Add a request to the record."""
        self.requests.append(request)
        self._notify()

    def record_disconnect(self, seq: int, path: str, rule: str | None, frames_sent: int) -> None:
        """Note a client that left before its response finished."""
        self.disconnect_count += 1
        self.disconnects.append(
            RecordedDisconnect(
                seq=seq, time=time.time(), path=path, rule=rule, frames_sent=frames_sent
            )
        )
        self._notify()

    def _notify(self) -> None:
        # Wake every waiter, then arm a fresh event for the next change.
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for_requests(
        self, count: int = 1, *, within: float = 5.0
    ) -> list[RecordedRequest]:
        """Wait until at least `count` requests are recorded; `TimeoutError` after `within` s."""
        async with asyncio.timeout(within):
            while len(self.requests) < count:
                await self._changed.wait()
        return list(self.requests)

    async def wait_for_disconnects(
        self, count: int = 1, *, within: float = 5.0
    ) -> list[RecordedDisconnect]:
        """Wait until at least `count` disconnects are recorded; `TimeoutError` after `within` s."""
        async with asyncio.timeout(within):
            while len(self.disconnects) < count:
                await self._changed.wait()
        return list(self.disconnects)
