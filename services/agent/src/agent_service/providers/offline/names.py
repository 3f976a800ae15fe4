"""Names in a question (a technician, a customer, a city), found without a list of known names.

The provider never sees the tenant's data before it writes SQL, so a name is any quoted phrase or
run of capitalised words that is not a keyword; the word before it says what kind of name it is.
Names only ever reach SQL as escaped LIKE literals.
"""

from __future__ import annotations

import re
from typing import Any, Final

from agent_service.providers.offline.period import MONTHS

MAX_NAME_CHARS: Final = 60
"""Longest name fragment taken from a question into a LIKE pattern."""

# Capitalised words that are never a name: question words, keywords, months, days.
_KEYWORDS: Final = """
    "how many what which who whom whose when where why is are was were do does did can could
    would will show list give tell find count name display get please the a an and or of for
    in on to by with without from at top best most least i we our my me you your it they
    them those these technicians technician techs tech customers customer clients client
    jobs job revenue average total sum number active inactive leave completed scheduled
    cancelled canceled open today yesterday tomorrow this last next month year week monday
    tuesday wednesday thursday friday saturday sunday hvac ac ev q1 q2 q3 q4 also only just
    more about details all any every residential commercial first second third ok okay hi
    hello thanks thank sort order unassigned overdue busiest newest latest recent highest
    lowest biggest per each monthly specialty status city segment rate hourly paid hires
    hired ones one
"""
_NOT_NAMES: Final = frozenset(_KEYWORDS.split()) | frozenset(MONTHS)
_CAPITALISED: Final = re.compile(r"\b[A-Z][\w'&.-]*(?:\s+(?:&\s+)?[A-Z][\w'&.-]*)*")
# Double or curly quotes; single quotes only around a phrase, so "O'Brien" stays one name.
_QUOTED: Final = re.compile(r"\"([^\"]{2,60})\"|“([^”]{2,60})”|(?<!\w)'([^']{2,60})'(?!\w)")


def _word_before(text: str, index: int) -> str:
    before = re.findall(r"[a-z]+", text[:index].lower())
    return " ".join(before[-2:])


def _is_keyword(word: str) -> bool:
    # "What's Victor Chen's rate?": "What's" opens the sentence, it is no part of the name.
    return word.lower().strip(".'").removesuffix("'s") in _NOT_NAMES


def find_names(original: str) -> list[tuple[str, str]]:
    """(the two words before it, name) for each quoted or capitalised phrase that is no keyword."""
    out: list[tuple[str, str]] = []
    spans: list[tuple[int, int]] = []
    for found in _QUOTED.finditer(original):
        phrase = found[1] or found[2] or found[3]
        out.append((_word_before(original, found.start()), phrase.strip()))
        spans.append(found.span())
    for found in _CAPITALISED.finditer(original):
        if any(a <= found.start() < b for a, b in spans):
            continue
        if found.start() == 0 and " " not in found[0].strip():
            continue  # a lone capital word opening the question is just the sentence start
        words = found[0].split()
        while words and _is_keyword(words[0]):
            words.pop(0)
        while words and _is_keyword(words[-1]):
            words.pop()
        name = " ".join(words).removesuffix("'s").strip(" .,&")
        if len(name) >= 2 and not _is_keyword(name):
            start = found.start() + found[0].find(words[0])
            out.append((_word_before(original, start), name))
    return out


def place_names(
    original: str, values: dict[str, Any], guessed: list[tuple[str, str]] | None = None
) -> None:
    """Set `city`, `technician`, `customer`, `about` or `person` in `values` from the names in
    the question (and any lower-case names `guessed`), by the word that precedes each name."""
    for before, found in [*find_names(original), *(guessed or [])]:
        name = found[:MAX_NAME_CHARS]
        last = before.split()[-1] if before else ""
        if last in {"in", "near"} or before.endswith(("based in", "located in", "city of")):
            values.setdefault("city", name)
        elif last in {"technician", "tech", "by"} or before.endswith("assigned to"):
            values.setdefault("technician", name)
        elif last in {"customer", "client"}:
            values.setdefault("customer", name)
        elif last in {"about", "is"} or before.endswith(("details on", "details for")):
            values.setdefault("about", name)
        else:
            values.setdefault("person", name)
