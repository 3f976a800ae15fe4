"""Names typed in lower case ("how much does victor chen make an hour", "customers in tacoma"),
guessed from where they stand, never from a list of the tenant's names.

A capitalised or quoted name is found by `names.find_names`. A lower-case one is only taken when
every other word is understood and its place leaves one reading: one or two unknown words right
after "in"/"near" at the end of a question are a city; exactly two unknown words in a question
about someone's pay or jobs are a person's name. Anything else stays an unknown word, which the
reply names back to the user.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from agent_service.providers.offline.wording import unknown_words

_WORD: Final = re.compile(r"[a-z][a-z'-]*")
_CITY_BEFORE: Final = frozenset({"in", "near"})
_PERIOD_AFTER: Final = re.compile(
    r"^\s*(?:$|[?.!,]|(?:this|last|next|in|during|since|today|yesterday|tomorrow)\b)"
)
_ABOUT_SOMEONE: Final = re.compile(
    r"\b(?:hourly|per hour|an hour|rate|pay|paid|make|makes|earn|earns|did|does|has|complete"
    r"|completed|finish|finished|who is|who's|about)\b"
)


def guess_names(text: str, known_names: Iterable[str]) -> list[tuple[str, str]]:
    """(the word before it, name) for the one lower-case name `text` (lower-cased) may hold."""
    unknown = set(unknown_words(text, known_names))
    if not unknown:
        return []
    words = [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]
    runs: list[list[tuple[str, int, int]]] = []
    for word in words:
        if word[0].removesuffix("'s") in unknown:
            if runs and runs[-1][-1] is words[words.index(word) - 1]:
                runs[-1].append(word)
            else:
                runs.append([word])
    if len(runs) != 1 or len(runs[0]) > 2:
        return []
    run = runs[0]
    index = words.index(run[0])
    before = words[index - 1][0] if index else ""
    name = " ".join(w for w, _, _ in run).removesuffix("'s")
    if before in _CITY_BEFORE and _PERIOD_AFTER.match(text[run[-1][2] :]):
        return [(before, name)]
    if len(run) == 2 and _ABOUT_SOMEONE.search(text):
        return [(before, name)]
    return []
