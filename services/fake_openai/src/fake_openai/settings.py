"""Server-wide settings of the fake server, built by the caller (never read from the env)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fake_openai.knobs import Timing


@dataclass(frozen=True, slots=True)
class FakeSettings:
    """Limits and global knobs. Rule and script timings override `timing` field by field."""

    timing: Timing = field(default_factory=lambda: Timing(ttft_ms=0, tps=0, chunk_tokens=1))
    models: tuple[str, ...] = ("fake-model",)
    """Listed by `GET /v1/models`; the first is used when a request names no model."""
    max_body_bytes: int = 8 * 1024 * 1024
    """Larger request bodies get 413."""
    max_records: int = 10_000
    """Requests and disconnects kept in the record (oldest dropped)."""
    write_batch_bytes: int = 64 * 1024
    """Unpaced streams (tps 0) join frames into writes up to this size; 0 writes frame by frame."""
    system_fingerprint: str = "fp_fake"

    def __post_init__(self) -> None:
        if not self.models:
            raise ValueError("settings.models needs at least one model id")
        for name in ("max_body_bytes", "max_records"):
            if getattr(self, name) < 1:
                raise ValueError(f"settings.{name} must be >= 1")
        if self.write_batch_bytes < 0:
            raise ValueError("settings.write_batch_bytes must be >= 0")
