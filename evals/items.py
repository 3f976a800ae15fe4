"""The evaluation set's schema (`questions.yaml`), loaded and checked with pydantic."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

Category = Literal["data", "documents", "followup", "refuse", "cross_tenant"]
Unit = Literal["count", "money", "percent", "number", "text"]
Reason = Literal[
    "read_only", "forecast", "other_company", "injection", "missing_field", "no_document"
]

CATEGORIES: tuple[Category, ...] = ("data", "documents", "followup", "refuse", "cross_tenant")
ANSWERABLE: frozenset[Category] = frozenset({"data", "documents", "followup"})
QUESTIONS_FILE = Path(__file__).with_name("questions.yaml")


class Item(BaseModel):
    """One scored question. A data item carries its own SQL (`:company` is bound to the asking
    company); a document item the expected document, section and key fact; a must-refuse or
    cross-tenant item the reason its refusal must give."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    company: Literal["acme-hvac", "bluepeak-plumbing", "citywide-electric"]
    category: Category
    kind: str
    """The kind of question (active-vs-total, period-move, policy-paraphrase…): groups failures."""
    ask: str = Field(min_length=1)
    before: tuple[str, ...] = ()
    """Earlier turns of the same conversation, sent first and not scored (follow-ups)."""
    sql: str | None = None
    unit: Unit | None = None
    tolerance: float | None = None
    context_sql: str | None = None
    """True related numbers an answer may also state (e.g. the total next to the active count)."""
    doc: str | None = None
    section: str | None = None
    fact: tuple[str, ...] = ()
    """Any one of these phrases must appear in a document answer (lower-cased, spaces folded)."""
    reason: Reason | None = None
    field: str | None = None
    """For `missing_field`: the word the refusal must name (priority, rating…)."""
    foreign: str | None = None
    """For cross-tenant: the other company whose facts must never appear."""
    foreign_sql: str | None = None
    """The asked figure: its value for `foreign` (when it differs from the caller's) must not
    appear in the answer."""
    forbid: tuple[str, ...] = ()
    """Phrases that make any answer wrong (another company's figure, an invented value)."""

    @model_validator(mode="after")
    def _one_expectation(self) -> Item:
        kinds = [self.sql is not None, self.doc is not None, self.reason is not None]
        if sum(kinds) != 1:
            raise ValueError(f"{self.id}: give exactly one of sql, doc, reason")
        if self.sql is not None and self.unit is None:
            raise ValueError(f"{self.id}: a data item needs a unit")
        if self.doc is not None and (not self.fact or self.section is None):
            raise ValueError(f"{self.id}: a document item needs a section and a fact")
        if self.reason == "missing_field" and not self.field:
            raise ValueError(f"{self.id}: a missing_field item names the field")
        if self.category == "cross_tenant" and self.foreign is None:
            raise ValueError(f"{self.id}: a cross-tenant item names the foreign company")
        if self.category == "followup" and not self.before:
            raise ValueError(f"{self.id}: a follow-up needs the turns before it")
        return self

    @property
    def answerable(self) -> bool:
        return self.category in ANSWERABLE


def load_items(path: Path = QUESTIONS_FILE) -> list[Item]:
    """The items of `path`, in file order; ids are unique."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    items = [Item.model_validate(entry) for entry in raw["items"]]
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise ValueError(f"duplicate item id {item.id}")
        seen.add(item.id)
    return items
