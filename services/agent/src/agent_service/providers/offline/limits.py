"""The offline provider's limits, in one place: how much it reads, ranks, lists and quotes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OfflineLimits:
    """Every cap the offline provider applies; all must be positive."""

    max_top_n: int = 50
    """Largest "top N" (and "N newest hires") a question may ask for; larger asks are capped."""
    max_listed: int = 10
    """Rows shown as bullets in an answer before "…and N more"."""
    max_quoted_sentences: int = 3
    """Sentences quoted from policy passages in one answer."""

    def __post_init__(self) -> None:
        for name in ("max_top_n", "max_listed", "max_quoted_sentences"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
