"""Pacing and fault knobs, set globally (settings, script) and per rule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FaultMode = Literal["drop", "error_event", "hang", "raw"]


@dataclass(frozen=True, slots=True)
class Timing:
    """How a reply is paced; `None` fields inherit from the next level (rule, script, settings)."""

    ttft_ms: float | None = None
    """Delay before the first chunk (streaming) or before the response (non-streaming)."""
    tps: float | None = None
    """Tokens per second of content and tool-call arguments; 0 streams as fast as possible."""
    chunk_tokens: int | None = None
    """Tokens per content/arguments delta (ignored when `chunk_chars` > 0)."""
    chunk_chars: int | None = None
    """Characters per delta; 0 means cut by tokens instead."""

    def __post_init__(self) -> None:
        for name in ("ttft_ms", "tps", "chunk_chars"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"timing.{name} must be >= 0, got {value}")
        if self.chunk_tokens is not None and self.chunk_tokens < 1:
            raise ValueError(f"timing.chunk_tokens must be >= 1, got {self.chunk_tokens}")

    def over(self, base: Timing) -> Timing:
        """This timing with its unset fields taken from `base`."""
        return Timing(
            ttft_ms=base.ttft_ms if self.ttft_ms is None else self.ttft_ms,
            tps=base.tps if self.tps is None else self.tps,
            chunk_tokens=base.chunk_tokens if self.chunk_tokens is None else self.chunk_tokens,
            chunk_chars=base.chunk_chars if self.chunk_chars is None else self.chunk_chars,
        )


@dataclass(frozen=True, slots=True)
class Pace:
    """A fully resolved `Timing`: what the delivery loop runs on."""

    ttft_ms: float = 0.0
    tps: float = 0.0
    chunk_tokens: int = 1
    chunk_chars: int = 0

    @classmethod
    def resolve(cls, *levels: Timing | None) -> Pace:
        """Take each field from the first level (most specific first) that sets it."""
        merged = Timing()
        for level in reversed([lv for lv in levels if lv is not None]):
            merged = level.over(merged)
        default = cls()
        return cls(
            ttft_ms=default.ttft_ms if merged.ttft_ms is None else float(merged.ttft_ms),
            tps=default.tps if merged.tps is None else float(merged.tps),
            chunk_tokens=default.chunk_tokens
            if merged.chunk_tokens is None
            else merged.chunk_tokens,
            chunk_chars=default.chunk_chars if merged.chunk_chars is None else merged.chunk_chars,
        )


@dataclass(frozen=True, slots=True)
class Fault:
    """Break a response after `after_chunks` SSE data frames.

    `drop` closes the connection abruptly (an incomplete chunked body); `error_event` sends an
    OpenAI-shaped `{"error": ...}` data frame and ends the stream; `hang` sends nothing more and
    keeps the connection open until the client leaves or the server shuts down. On a non-streaming
    request, `drop` closes after the headers, `error_event` answers `status` with the error body,
    and `hang` never answers. `raw` (streaming only) sends `data` as one more SSE data frame, as
    it is (JSON of any shape, or not JSON at all), then ends the stream.
    """

    mode: FaultMode
    after_chunks: int = 0
    message: str = "The fake server injected a failure."
    type: str = "server_error"
    code: str | None = None
    status: int = 500
    data: str = "{}"
    """The frame's payload for `raw`, e.g. `{"choices": "not-a-list"}`."""

    def __post_init__(self) -> None:
        if self.mode not in ("drop", "error_event", "hang", "raw"):
            raise ValueError(
                f"fault.mode must be drop, error_event, hang or raw, got {self.mode!r}"
            )
        if self.after_chunks < 0:
            raise ValueError(f"fault.after_chunks must be >= 0, got {self.after_chunks}")
        if not 400 <= self.status <= 599:
            raise ValueError(f"fault.status must be an HTTP error status, got {self.status}")
