"""Extractive answers from policy passages: the best-matching sentences, cited as [n].

`[n]` always means the n-th passage the caller gave; nothing else is ever cited. Passage text is
quoted, never followed.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from agent_service.providers.base import Passage
from agent_service.storage.intents import intent_words, literal_text, matched

MAX_SENTENCE_CHARS: Final = 400
NO_PASSAGES: Final = (
    "No policy document I can see covers that. Try asking about overtime, on-call pay, safety"
    " and PPE, time off, or expenses and mileage — or check with your manager or HR."
)
_STOPWORD_TEXT: Final = """
    "a an the and or of to in on for at by with from is are was were be been am do does did can
    could should would will may might must i we you our your my me us it its this that these
    those what which who whom how when where why there here about as if so not no yes any
    all some much many more most get got have has had please tell know want need policy
    policies rule rules company
"""
_STOPWORDS: Final = frozenset(_STOPWORD_TEXT.split())
_SENTENCE_END: Final = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9“\"(])")
INTENT_WEIGHT: Final = 0.5
"""How much a policy word of the question's intent ("kick in" -> "applies", "beyond") counts in
a sentence, against 1 (and more for rare ones) for a word of the question itself."""
CONCEPT_WEIGHT: Final = 1.5
"""Added once for each intent of the question whose policy words a sentence has: a sentence that
speaks to every concept asked about ("cut my hand … who do I tell": an injury, reporting) beats
one that only shares a literal word ("hand tools")."""
CONTEXT_WEIGHT: Final = 0.5
"""How much a word of the previous question counts when the question is a short follow-up ("how
much is it paid?" after "when does overtime kick in?")."""
RANK_BONUS: Final = (2.0, 1.0, 0.5)
"""Added to a sentence's score by the retrieval rank of its passage (first, second, third): the
retriever already weighed headings and titles, so among equal sentences the best section wins."""


@dataclass(frozen=True, slots=True)
class _Candidate:
    score: float
    passage: int
    position: int
    text: str


def terms(text: str) -> set[str]:
    """Content words of `text`, lower-cased and crudely stemmed, without stopwords."""
    out = set()
    for word in re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)*", text.lower()):
        if word in _STOPWORDS or len(word) < 2:
            continue
        for part in {word, *word.split("-")}:
            out.add(_stem(part))
    return out


def _stem(word: str) -> str:
    for suffix in ("ments", "ment", "ings", "ing", "ies", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def _sentences(text: str) -> list[tuple[str, str]]:
    """(sentence, its section heading) pairs; list items stand on their own."""
    units: list[tuple[str, str]] = []
    paragraph: list[str] = []
    heading = ""
    for line in [*text.splitlines(), ""]:
        stripped = line.strip()
        item = stripped[:2] in {"- ", "* "}
        if not stripped or stripped.startswith("#") or item:
            if paragraph:
                units.append((" ".join(paragraph), heading))
                paragraph = []
            if stripped.startswith("#"):
                heading = stripped.lstrip("#").strip()
            elif item:
                units.append((stripped[2:], heading))
            continue
        paragraph.append(stripped)
    out: list[tuple[str, str]] = []
    for unit, section in units:
        for sentence in _SENTENCE_END.split(" ".join(unit.split())):
            if len(sentence.strip()) > 3:
                out.append((sentence.strip(), section))
    return out


def answer_from_passages_text(
    question: str, passages: Sequence[Passage], max_sentences: int = 3, context: str = ""
) -> str:
    """The sentences of `passages` that best share the terms of `question` (rare terms weigh
    more) and the policy words of its intents, best first, each cited by the number of its
    passage. `context` is the previous question of a short follow-up; its words weigh little."""
    if not passages:
        return NO_PASSAGES
    wanted = terms(literal_text(question))
    concepts = [terms(intent.words) - wanted for intent in matched(question)]
    hinted = set().union(*concepts)
    around = terms(f"{literal_text(context)} {intent_words(context)}") - wanted - hinted
    units: list[tuple[int, int, str, set[str], set[str]]] = []
    for number, passage in enumerate(passages, start=1):
        title_terms = terms(passage.title)
        for position, (sentence, heading) in enumerate(_sentences(passage.text)):
            # The section heading counts as part of each sentence under it ("## Mileage" above
            # "$0.67 per mile"); the title only breaks ties between otherwise equal sentences.
            units.append(
                (number, position, sentence, terms(sentence) | terms(heading), title_terms)
            )
    # Rare question terms ("stipend") say more about a sentence than common ones ("on-call").
    frequency = Counter(term for *_, found, _ in units for term in found & wanted)
    weight = {term: 1 + 0.5 * math.log(len(units) / count) for term, count in frequency.items()}
    candidates: list[_Candidate] = []
    for number, position, sentence, found, title_terms in units:
        overlap = sum(weight[term] for term in found & wanted)
        overlap += INTENT_WEIGHT * len(found & hinted)
        overlap += CONCEPT_WEIGHT * sum(1 for words in concepts if found & words)
        overlap += CONTEXT_WEIGHT * len(found & around)
        if overlap:
            bonus = RANK_BONUS[number - 1] if number <= len(RANK_BONUS) else 0.0
            score = overlap + bonus + 0.25 * len(wanted & title_terms)
        else:
            score = 0.0
        candidates.append(_Candidate(score, number, position, sentence[:MAX_SENTENCE_CHARS]))
    best = max((c.score for c in candidates), default=0.0)
    if best <= 0:
        first = passages[0]
        opening = [s for s, _ in _sentences(first.text)[:1]] or [first.text[:MAX_SENTENCE_CHARS]]
        return (
            "I couldn't find a sentence that answers that directly. The closest document is"
            f" “{' '.join(first.title.split())}” [1]: {opening[0]}"
        )
    chosen: list[_Candidate] = []
    seen: set[str] = set()
    for candidate in sorted(candidates, key=lambda c: (-c.score, c.passage, c.position)):
        if candidate.score < best / 3 or candidate.text in seen:
            continue
        chosen.append(candidate)
        seen.add(candidate.text)
        if len(chosen) == max_sentences:
            break
    lines = [f"- {c.text} [{c.passage}]" for c in chosen]
    cited = sorted({c.passage for c in chosen})
    sources = "; ".join(f"[{n}] {' '.join(passages[n - 1].title.split())}" for n in cited)
    return (
        "Here is what your policy documents say:\n" + "\n".join(lines) + f"\n\nSources: {sources}."
    )
