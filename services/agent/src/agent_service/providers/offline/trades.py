"""Trades as families of specialties: a "plumber" is a technician whose specialty is plumbing work.

A company's specialties name the work ("drains", "water heaters"), not the trade, so a question
about plumbers, electricians or HVAC technicians matches every specialty of that trade. In a
company with no such specialty the answer is, truthfully, none.
"""

from __future__ import annotations

from typing import Final

TRADES: Final[dict[str, tuple[str, ...]]] = {
    "plumb": (
        "plumb", "drain", "water heater", "repip", "pipe", "leak", "fixture", "sewer", "faucet",
        "backflow", "sump",
    ),
    "electric": (
        "electric", "wiring", "panel", "lighting", "ev charger", "generator", "outlet", "surge",
    ),
    "hvac": (
        "hvac", "heating", "cooling", "ventilation", "refrigeration", "ductwork", "furnace",
        "air condition", "heat pump", "boiler",
    ),
}  # fmt: skip
"""Trade stem (as read from the question) -> the specialty stems that belong to the trade."""


def specialty_stems(stem: str) -> tuple[str, ...]:
    """The specialty stems a question's specialty word matches: a trade's family, or itself."""
    return TRADES.get(stem, (stem,))
