"""What a benchmark run measures: full (`make bench`) or smoke (seconds, tiny N)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

S1_MESSAGE = "bench-s1 stream as fast as you can"
S2_MESSAGE = "bench-s2 paced like a model"
S3_MESSAGE = "bench-s3 slow open stream"
SHORT_MESSAGE = "bench-short hello"


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """Sizes of every scenario; `smoke()` shrinks them to a few seconds in all."""

    mode: str = "full"
    s1_tokens: int = 5000
    s1_reps: int = 3
    s1_requests: int = 100
    s1_request_rounds: int = 5
    s2_concurrency: tuple[int, ...] = (50, 100, 400)
    s2_tokens: int = 200
    s2_tps: float = 30.0
    s2_ttft_ms: float = 200.0
    s2_rounds: int = 2
    s2_timeout_s: float = 90.0
    s2_transports: tuple[str, ...] = ("sse", "ws")
    s3_streams: int = 500
    s3_tps: float = 1.0
    s4_connections: int = 5000
    s5_workers: int = 2
    s5_concurrency: tuple[int, ...] = (100, 150, 200, 300, 400)
    settle_s: float = 2.0

    @classmethod
    def smoke(cls) -> BenchConfig:
        """Every scenario end to end in a few seconds (the test suite runs this)."""
        return cls(
            mode="smoke",
            s1_tokens=200,
            s1_reps=1,
            s1_requests=3,
            s1_request_rounds=1,
            s2_concurrency=(2, 4),
            s2_tokens=10,
            s2_tps=100.0,
            s2_ttft_ms=20.0,
            s2_rounds=2,
            s3_streams=5,
            s3_tps=5.0,
            s4_connections=10,
            s5_concurrency=(2, 4),
            settle_s=0.3,
        )

    @property
    def s2_stream_s(self) -> float:
        """How long one S2 answer takes at the model's own pace."""
        return self.s2_ttft_ms / 1000 + self.s2_tokens / self.s2_tps

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)

    def fake_script(self) -> dict[str, Any]:
        """The fake server's rules: an instant route decision, then each scenario's answer."""
        instant = {"ttft_ms": 0, "tps": 0}
        return {
            "rules": [
                {
                    "name": "classify",
                    "match": {"has_tool_choice": True, "stream": False},
                    "reply": {"json": {"route": "general", "confidence": 0.9, "reason": "bench"}},
                    "timing": instant,
                },
                {
                    "name": "s1",
                    "match": {"last_user": "bench-s1"},
                    "reply": {"filler_tokens": self.s1_tokens},
                    "timing": instant,
                },
                {
                    "name": "s2",
                    "match": {"last_user": "bench-s2"},
                    "reply": {"filler_tokens": self.s2_tokens},
                    "timing": {"ttft_ms": self.s2_ttft_ms, "tps": self.s2_tps},
                },
                {
                    "name": "short",
                    "match": {"last_user": "bench-short"},
                    "reply": {"content": "Hello there."},
                    "timing": instant,
                },
                {
                    "name": "s3",
                    "match": {"last_user": "bench-s3"},
                    # long enough to outlive the measurement; the harness hangs up first
                    "reply": {"filler_tokens": 600},
                    "timing": {"ttft_ms": 0, "tps": self.s3_tps},
                },
            ],
            "default": {"reply": {"content": "bench default reply"}},
        }
