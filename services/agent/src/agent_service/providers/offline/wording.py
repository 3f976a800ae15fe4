"""A question's wording made plain before it is read, and the words that could not be read.

`normalise` turns everyday synonyms into the words the reader knows ("working right now" ->
"active", "wrapped up" -> "completed") and corrects misspelt schema words ("tecnicians").
`unknown_words` lists the words of a data question that nothing accounts for, so the provider can
say which part it does not understand instead of answering a nearby question.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Final

from agent_service.providers.offline.vocabulary import CORRECTABLE, VOCABULARY

_SYNONYMS: Final[tuple[tuple[str, str], ...]] = (
    (r"\s*%(?=\s+of\b)", " percent"),
    # "techs working right now", "who is on duty today": the technician status `active`.
    (
        r"\b(?:currently |right now )?(?:working|on duty|on the clock|on shift|at work"
        r"|clocked in|on the job)(?!\s+(?:on|for)\b)"
        r"(?:\s+(?:right now|now|currently|today|at the moment|at present|these days))?",
        " active",
    ),
    (r"\b(?:right now|at the moment|at present|these days|as of now|as of today)\b", "currently"),
    (r"\b(?:wrapped up|closed out|knocked out|got done|gotten done|get done|carried out)\b",
     "completed"),
    # Texting shorthand for the words the reader knows.
    (r"\brn\b", "currently"),
    (r"\bavg\b\.?", "average"),
    (r"\b(?:tmrw|tmrow|tmr|tmw|2moro|2morrow|tomorow|tommorow|tommorrow)\b", "tomorrow"),
    (r"\bhead ?counts?\b", "number"),
    # "this week (mon to sun)": the week already runs Monday to Sunday.
    (r"\(?\s*\bmon(?:day)?\s*(?:to|-|–|thru|through|till|until)\s*sun(?:day)?\b\s*\)?", " "),
    # "including people on leave", "whatever their status", "on the books": every status, which
    # is what a question without a status filter counts.
    (r",?\s*\b(?:including|incl\.?|inc\.|counting|even)\s+(?:(?:the |those |people |techs |ones )"
     r"|(?:who are|that are|who're) )*(?:on leave|inactive|former(?: \w+)?|gone)"
     r"(?:\s*(?:,|and|or|\+|&)\s*(?:on leave|inactive|former|gone))*", " "),
    (r",?\s*\b(?:whatever (?:their|the|its) status|regardless of (?:their |the )?status"
     r"|(?:of|in|with) any status|all statuses|any status)\b", " "),
    (r"\b(?:on the books|on (?:the )?payroll)\b", " "),
    (r"\b(?:took in|take in|taken in|brought in|bring in|pulled in|raked in|generated|gross(?:ed)?"
     r"|turnover|takings)\b", "earned"),
)  # fmt: skip
_WORD: Final = re.compile(r"[A-Za-z][A-Za-z']*")
_TOKEN: Final = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_TYPO_CUTOFF: Final = 0.8


def _correct(word: str) -> str:
    lower = word.lower()
    if len(lower) < 5 or lower in VOCABULARY or "'" in lower:
        return word
    # Same first letter, and closer the shorter the word: "tecnicians", "cusotmers", "revnue",
    # but never "meaning" -> "earning".
    cutoff = _TYPO_CUTOFF if len(lower) >= 8 else 0.85
    candidates = [w for w in CORRECTABLE if w[0] == lower[0]]
    close = difflib.get_close_matches(lower, candidates, n=1, cutoff=cutoff)
    return close[0] if close else word


def normalise(question: str) -> str:
    """`question` with synonyms made plain and misspelt schema words corrected; capitalised
    words other than the first are names and are left alone."""
    text = " ".join(question.replace("’", "'").split())
    for pattern, replacement in _SYNONYMS:
        text = re.sub(pattern, replacement, text, flags=re.IGNORECASE)
    text = " ".join(_without_negated_statuses(text).split())

    def fix(found: re.Match[str]) -> str:
        word = found[0]
        if word[0].isupper() and found.start() > 0:
            return word
        return _correct(word)

    return _WORD.sub(fix, text)


_STATUS_NAMES: Final = r"(?:on leave|inactive|former|gone|left|quit)"
_NEGATED: Final = re.compile(
    rf",?\s*\(?\b(?:not|excluding|except|but not|who aren't|who are not|and not)\s+{_STATUS_NAMES}"
    rf"(?:\s*(?:,|or|and|nor|/)\s*{_STATUS_NAMES})*\)?",
    re.IGNORECASE,
)


def _without_negated_statuses(text: str) -> str:
    """ "active, not on leave or gone": the statuses ruled out only restate `active`."""
    if re.search(r"\bactive\b", text, re.IGNORECASE):
        return _NEGATED.sub(" ", text)
    return text


def _known(word: str) -> bool:
    word = word.removesuffix("'s").strip("'")
    if not word or word in VOCABULARY:
        return True
    return (word.endswith("s") and word[:-1] in VOCABULARY) or (
        word.endswith("es") and word[:-2] in VOCABULARY
    )


def unknown_words(text: str, names: Iterable[str]) -> list[str]:
    """Words of `text` (lower-cased) that are no known word, number or part of a found name."""
    named = {w for name in names for w in _TOKEN.findall(name.lower())}
    named |= {w.removesuffix("'s") for w in named}
    out: list[str] = []
    for word in _TOKEN.findall(text):
        if any(ch.isdigit() for ch in word) or word in named or word.removesuffix("'s") in named:
            continue
        if not _known(word) and word not in out:
            out.append(word)
    return out
