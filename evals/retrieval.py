"""Retrieval recall@k of the document stores, called directly (no model): for each document
question, is the expected section among the top k passages of the asking company's store?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from evals.agent_adapter import Hit, Searcher
from evals.items import Item
from evals.reading import fold

KS: Final = (1, 3, 5)


@dataclass(frozen=True, slots=True)
class RetrievalResult:
    item_id: str
    company: str
    rank: int | None
    """1-based rank of the first passage holding the expected section; None: not in the top 5."""
    top: tuple[str, ...]


def holds_section(item: Item, hit: Hit) -> bool:
    """A passage holds the expected section when it is from the expected document and contains
    the section's key fact (the sentence that answers the question)."""
    text = fold(hit.text)
    return hit.doc_id == item.doc and any(fold(f) in text for f in item.fact)


def retrieval_items(items: Sequence[Item]) -> list[Item]:
    """Document questions that stand alone (follow-ups need their conversation to make sense)."""
    return [i for i in items if i.doc is not None and not i.before]


async def measure(search: Searcher, items: Sequence[Item]) -> list[RetrievalResult]:
    out: list[RetrievalResult] = []
    for item in retrieval_items(items):
        hits = await search(item.company, item.ask, max(KS))
        rank = next((n for n, h in enumerate(hits, 1) if holds_section(item, h)), None)
        out.append(RetrievalResult(item.id, item.company, rank, tuple(h.chunk_id for h in hits)))
    return out


def recall_table(results: Sequence[RetrievalResult]) -> dict[str, Any]:
    """recall@k overall and per company: the share of questions whose section ranks ≤ k."""
    groups: dict[str, list[RetrievalResult]] = {"all": list(results)}
    for r in results:
        groups.setdefault(r.company, []).append(r)
    table: dict[str, Any] = {}
    for name, rows in groups.items():
        table[name] = {"n": len(rows)} | {
            f"recall@{k}": (
                round(sum(1 for r in rows if r.rank is not None and r.rank <= k) / len(rows), 4)
                if rows
                else None
            )
            for k in KS
        }
    return table
