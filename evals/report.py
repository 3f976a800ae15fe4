"""The eval's results: the summary per category, the printed table, docs/evals.md and .json."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals.items import CATEGORIES, Item
from evals.scoring import Reply, Verdict
from evals.truth import Truth


@dataclass(frozen=True, slots=True)
class Scored:
    item: Item
    truth: Truth
    reply: Reply
    verdict: Verdict

    def as_json(self) -> dict[str, Any]:
        i = self.item
        expected: Any
        if i.reason is not None:
            expected = f"refusal naming: {i.reason}" + (f" ({i.field})" if i.field else "")
        elif i.doc is not None:
            expected = f"{i.doc} § {i.section}: {' | '.join(i.fact)}"
        else:
            expected = list(self.truth.expected)
        return {
            "id": i.id,
            "company": i.company,
            "category": i.category,
            "kind": i.kind,
            "before": list(i.before),
            "ask": i.ask,
            "expected": expected,
            "got": self.reply.text if self.reply.error is None else f"[error {self.reply.error}]",
            "outcome": self.verdict.outcome,
            "why": self.verdict.why,
            "route": self.reply.route,
            "sql": self.reply.sql,
            "sources": [f"{s.doc_id} ({s.chunk_id})" for s in self.reply.sources],
        }


def summarize(scored: Sequence[Scored]) -> dict[str, Any]:
    """Counts and shares per category, answerable accuracy and the must-refuse refusal rate."""
    per: dict[str, dict[str, Any]] = {}
    for category in CATEGORIES:
        rows = [s for s in scored if s.item.category == category]
        counts = {
            o: sum(1 for s in rows if s.verdict.outcome == o) for o in ("right", "refused", "wrong")
        }
        per[category] = {"n": len(rows), **counts} | {
            f"{o}_pct": _pct(c, len(rows)) for o, c in counts.items()
        }
    answerable = [s for s in scored if s.item.answerable]
    refusing = [s for s in scored if not s.item.answerable]
    return {
        "categories": per,
        "total": len(scored),
        "wrong": sum(1 for s in scored if s.verdict.outcome == "wrong"),
        "answerable_accuracy_pct": _pct(
            sum(1 for s in answerable if s.verdict.outcome == "right"), len(answerable)
        ),
        "must_refuse_refused_with_reason_pct": _pct(
            sum(1 for s in refusing if s.verdict.outcome == "right"), len(refusing)
        ),
    }


def _pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def table(summary: dict[str, Any]) -> str:
    lines = [f"{'category':<13} {'n':>4} {'right':>6} {'refused':>8} {'wrong':>6} {'right %':>8}"]
    for name, row in summary["categories"].items():
        lines.append(
            f"{name:<13} {row['n']:>4} {row['right']:>6} {row['refused']:>8} {row['wrong']:>6}"
            f" {_fmt(row['right_pct']):>8}"
        )
    lines.append(f"answerable accuracy: {_fmt(summary['answerable_accuracy_pct'])} %")
    lines.append(
        "must-refuse refused with a reason: "
        f"{_fmt(summary['must_refuse_refused_with_reason_pct'])} %"
    )
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def write_json(
    path: Path,
    run: dict[str, Any],
    summary: dict[str, Any],
    scored: Sequence[Scored],
    recall: dict[str, Any],
) -> None:
    body = {
        "run": run,
        "summary": summary,
        "recall": recall,
        "items": [s.as_json() for s in scored],
    }
    path.write_text(json.dumps(body, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
