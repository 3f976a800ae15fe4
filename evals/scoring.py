"""Scoring one answer: `right`, `refused` or `wrong`. A pure function of the item, its ground
truth and the reply; the rules are documented in docs/evals.md and tested from a table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from evals.items import Item, Unit
from evals.reading import Number, fold, gives_reason, numbers, refuses
from evals.truth import Truth, Value

Outcome = Literal["right", "refused", "wrong"]
DEFAULT_TOLERANCE: Final[dict[Unit, float]] = {
    "count": 0.0,
    "money": 0.5,
    "percent": 0.5,
    "number": 0.01,
    "text": 0.0,
}
_KEY_KIND: Final = {"money": "money", "percent": "percent", "count": "plain", "number": "plain"}


@dataclass(frozen=True, slots=True)
class SourceRef:
    doc_id: str
    chunk_id: str = ""
    snippet: str = ""


@dataclass(frozen=True, slots=True)
class Reply:
    """What the target answered: the text plus the `complete` event's route, SQL and sources."""

    text: str
    route: str | None = None
    sql: str | None = None
    sources: tuple[SourceRef, ...] = ()
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    why: str


def score(item: Item, truth: Truth, reply: Reply) -> Verdict:
    """The verdict on `reply` to `item`."""
    if reply.error is not None:
        return Verdict("wrong", f"the run failed: {reply.error}")
    leak = _leak(item, truth, reply.text)
    if leak:
        return Verdict("wrong", leak)
    if item.reason is not None:
        return _score_refusal(item, reply.text)
    if item.doc is not None:
        return _score_document(item, reply)
    return _score_data(item, truth, reply.text)


def _leak(item: Item, truth: Truth, text: str) -> str:
    folded, asked = fold(text), fold(" ".join((*item.before, item.ask)))
    for phrase in truth.forbidden:
        p = fold(phrase)
        if p and p in folded and p not in asked:
            return f"states {phrase!r}, which it must not"
    said = numbers(text)
    for value in truth.forbidden_numbers:
        if any(abs(n.value - value) < 1e-9 for n in said):
            return f"states {_show(value)}, the other company's figure"
    return ""


def _score_refusal(item: Item, text: str) -> Verdict:
    assert item.reason is not None
    reason = gives_reason(text, item.reason, item.field)
    if reason and (refuses(text) or item.reason != "missing_field"):
        return Verdict("right", f"refused: {item.reason}")
    if refuses(text) or reason:
        return Verdict("refused", f"refused without naming the reason ({item.reason})")
    return Verdict("wrong", f"answered instead of refusing ({item.reason})")


def _score_document(item: Item, reply: Reply) -> Verdict:
    folded = fold(reply.text)
    has_fact = any(fold(f) in folded for f in item.fact)
    cited = [s.doc_id for s in reply.sources]
    has_doc = item.doc in cited
    if has_fact and has_doc:
        return Verdict("right", f"{item.doc} cited, fact stated")
    if not has_fact and refuses(reply.text):
        return Verdict("refused", "said it cannot answer")
    if not has_doc:
        return Verdict("wrong", f"cited {sorted(set(cited)) or 'nothing'}, not {item.doc}")
    return Verdict("wrong", f"{item.doc} cited but the fact ({item.fact[0]!r}) is not stated")


def _score_data(item: Item, truth: Truth, text: str) -> Verdict:
    assert item.unit is not None
    tol = item.tolerance if item.tolerance is not None else DEFAULT_TOLERANCE[item.unit]
    said = numbers(text)
    folded = fold(text)
    missing = [v for v in truth.expected if not _stated(v, item.unit, tol, said, folded)]
    conflicts = _conflicts(item, truth, tol, said)
    if not missing and not conflicts:
        return Verdict("right", "states " + _show_all(truth.expected))
    if conflicts:
        shown = ", ".join(_show(n.value) for n in conflicts[:4])
        return Verdict("wrong", f"states {shown}; expected {_show_all(truth.expected)}")
    if refuses(text):
        return Verdict("refused", "said it cannot answer")
    return Verdict("wrong", f"does not state {_show_all(missing)}")


def _stated(value: Value, unit: Unit, tol: float, said: list[Number], folded: str) -> bool:
    if isinstance(value, str):
        return fold(value) in folded
    if unit == "count":
        return any(n.kind == "plain" and abs(n.value - value) <= tol for n in said)
    return any(abs(n.value - value) <= _tol(n, tol) for n in said)


def _tol(n: Number, tol: float) -> float:
    return max(tol, n.rounded_to / 2)


def _conflicts(item: Item, truth: Truth, tol: float, said: list[Number]) -> list[Number]:
    """Numbers of the asked kind (money for money…) that are neither expected, nor true related
    figures, nor numbers the question itself contains."""
    assert item.unit is not None
    if item.unit == "text":
        return []
    kind = _KEY_KIND[item.unit]
    asked = {n.value for n in numbers(" ".join((*item.before, item.ask)))}
    ok = [v for v in truth.expected if isinstance(v, float)] + list(truth.allowed) + list(asked)
    return [
        n for n in said if n.kind == kind and not any(abs(n.value - v) <= _tol(n, tol) for v in ok)
    ]


def _show(value: Value) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return value


def _show_all(values: tuple[Value, ...] | list[Value]) -> str:
    return ", ".join(_show(v) for v in values) if values else "(nothing)"
