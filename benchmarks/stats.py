"""Small numeric helpers of the scenarios: percentiles, milliseconds, ratios to the floor."""

from __future__ import annotations

import math
from collections.abc import Sequence

TIERS = ("agent", "gateway")


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def ms(value: float | None) -> float | None:
    """Seconds as milliseconds, rounded; None stays None."""
    return None if value is None else round(value * 1000, 2)


def ratio(value: float | None, floor: float | None) -> float | None:
    """`value / floor`, rounded; None when either is missing or the floor is not positive."""
    if value is None or floor is None or floor <= 0:
        return None
    return round(value / floor, 2)
