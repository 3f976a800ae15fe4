"""Ground truth, computed from the demo database with the eval set's own SQL (never the
provider's), and the facts that belong only to another company (for leak checks)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from evals.agent_adapter import COMPANY_NAMES, TRAP_VALUES
from evals.items import Item

Value = float | str


@dataclass(frozen=True, slots=True)
class Truth:
    """What a right answer states (`expected`), what it may also state (`allowed`), and what no
    answer may state (`forbidden` phrases, `forbidden_numbers`)."""

    expected: tuple[Value, ...] = ()
    allowed: tuple[float, ...] = ()
    forbidden: tuple[str, ...] = ()
    forbidden_numbers: tuple[float, ...] = ()


class GroundTruth:
    """Runs items' SQL read-only against one demo database file."""

    def __init__(self, db_path: Path) -> None:
        uri = f"{Path(db_path).resolve().as_uri()}?mode=ro"
        self._conn = sqlite3.connect(uri, uri=True)
        self._own_facts = {c: self._company_strings(c) for c in COMPANY_NAMES}

    def close(self) -> None:
        self._conn.close()

    def rows(self, sql: str, company: str) -> list[tuple[object, ...]]:
        return list(self._conn.execute(sql, {"company": company}).fetchall())

    def values(self, sql: str, company: str) -> tuple[Value, ...]:
        out: list[Value] = []
        for row in self.rows(sql, company):
            for cell in row:
                if cell is None:
                    out.append(0.0)
                elif isinstance(cell, int | float):
                    out.append(float(cell))
                else:
                    out.append(str(cell))
        return tuple(out)

    def truth_for(self, item: Item) -> Truth:
        expected: tuple[Value, ...] = ()
        allowed: list[float] = []
        if item.sql is not None:
            expected = self.values(item.sql, item.company)
        if item.context_sql is not None:
            allowed = [
                v for v in self.values(item.context_sql, item.company) if isinstance(v, float)
            ]
        forbidden = list(item.forbid)
        forbidden_numbers: list[float] = []
        if item.foreign is not None:
            forbidden += sorted(self.only_in(item.foreign, item.company))
            if item.foreign_sql is not None:
                # the asked figure of the other company must not be the answer
                own = set(self.values(item.foreign_sql, item.company))
                theirs = self.values(item.foreign_sql, item.foreign)
                forbidden_numbers = [v for v in theirs if isinstance(v, float) and v not in own]
        return Truth(
            expected=expected,
            allowed=tuple(allowed),
            forbidden=tuple(forbidden),
            forbidden_numbers=tuple(forbidden_numbers),
        )

    def only_in(self, company: str, other: str) -> set[str]:
        """Names and tokens of `company` that `other` does not have (technicians, customers,
        job titles, trap values). Cities and specialties are left out: they are common words."""
        return self._own_facts[company] - self._own_facts[other]

    def _company_strings(self, company: str) -> set[str]:
        found: set[str] = set(TRAP_VALUES[company])
        for sql in (
            "SELECT name FROM technicians WHERE company_id = :company",
            "SELECT name FROM customers WHERE company_id = :company",
            "SELECT title FROM jobs WHERE company_id = :company",
        ):
            found.update(str(r[0]) for r in self.rows(sql, company))
        return found
