"""The default route when the router cannot be trusted: its reply was unusable, or its confidence
was below `AGENT_MODEL_ROUTE_MIN_CONFIDENCE`.

The rule (docs/real-model.md): a question that names a data word — a table of the curated schema
(`technicians`, `customers`, `jobs`, singular or plural) or one of its one-word columns
(`revenue`, `city`, ...) — goes to SQL; any other question goes to the documents. Both steps
report honestly when they find nothing (`complete.stats.unanswered`), so a wrong default costs a
plain "couldn't find that", never an improvised answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from agent_service.providers.base import SchemaTable
from contracts.agent_api import Route

GENERIC_COLUMNS = frozenset({"id", "name", "status", "title", "notes"})
"""Column names too common in ordinary speech to mean "look at the data"."""

_WORD = re.compile(r"[a-z]+")


def data_words(schema: Iterable[SchemaTable]) -> frozenset[str]:
    """Words that point a question at the business records."""
    words: set[str] = set()
    for table in schema:
        words.add(table.name)
        if table.name.endswith("s"):
            words.add(table.name[:-1])
        words.update(
            column
            for column, _, _ in table.columns
            if column.isalpha() and column not in GENERIC_COLUMNS
        )
    return frozenset(words)


def fallback_route(question: str, schema: Sequence[SchemaTable]) -> tuple[Route, str]:
    """The default route for `question` and the reason shown in `route_decision`."""
    named = sorted(set(_WORD.findall(question.lower())) & data_words(schema))
    if named:
        return "sql", f"default route: the router was unsure; the question names {named[0]!r}"
    return "rag", "default route: the router was unsure and the question names no data"
