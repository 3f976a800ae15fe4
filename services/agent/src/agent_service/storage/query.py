"""From a question to a full-text query, the same for both document stores.

People ask "when does overtime kick in" and "what gear do I need"; policies say "hours beyond 40
are overtime" and "personal protective equipment". `expand_query` adds the policies' words for the
intents a question shows (the table in `storage/intents.py`). `fts_query` then turns the question
and those words into a safe OR-query of quoted terms for FTS5 and for `websearch_to_tsquery`.
A short follow-up ("how much is it paid?" after an overtime question) is searched together with
the previous policy question (`follow_up_context`), by both providers.
"""

from __future__ import annotations

import re
from typing import Final

from agent_service.storage.intents import intent_words, spelled_out

MAX_QUERY_TERMS: Final = 32
_TERM_RE: Final = re.compile(r"\w+", re.UNICODE)
# Words that carry no meaning for retrieval, plus FTS5's own operators (which we never pass on).
_STOP_WORDS: Final = frozenset(
    {
        "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "how",
        "i", "if", "in", "is", "it", "me", "my", "near", "not", "of", "on", "or", "our", "show",
        "tell", "that", "the", "their", "them", "there", "this", "to", "us", "we", "what", "when",
        "where", "which", "who", "why", "will", "with", "you", "your", "about", "any", "please",
        "give", "list", "get", "much", "many",
    }
)  # fmt: skip


def expand_query(question: str) -> str:
    """`question` (shorthand spelled out) followed by the policy words of its intents."""
    return f"{spelled_out(question)} {intent_words(question)}".strip()


def fts_query(text: str) -> str:
    """Turn free text into a safe FTS5 query: quoted content words joined by OR ('' if none)."""
    terms: list[str] = []
    for word in _TERM_RE.findall(text.lower()):
        if word in _STOP_WORDS or word in terms or word == "_":
            continue
        terms.append(word)
        if len(terms) == MAX_QUERY_TERMS:
            break
    # \\w+ never contains a double quote, so quoting makes every term a plain string token.
    return " OR ".join(f'"{term}"' for term in terms)


def search_query(question: str) -> str:
    """The full-text query both stores run for `question`: its words, then its intents' words."""
    return fts_query(expand_query(question))


MAX_FOLLOW_UP_WORDS: Final = 4
"""A question with at most this many content words that reads as a follow-up ("how much is it
paid?", "and on sundays?") is searched together with the previous policy question."""
_FOLLOW_UP: Final = re.compile(
    r"^(?:and|also|what about|how about|same|so|then|but)\b"
    r"|\b(?:it|that|this|those|these|they|them|then)\b"
)


def follow_up_context(question: str, previous: str) -> str:
    """`previous` (the previous policy question) when `question` is a short follow-up to it,
    else ''. Retrieval searches both; the offline answerer weighs `previous`'s words lightly."""
    if not previous.strip():
        return ""
    text = spelled_out(question)
    content = [w for w in _TERM_RE.findall(text) if w not in _STOP_WORDS]
    if len(content) > MAX_FOLLOW_UP_WORDS or not _FOLLOW_UP.search(text):
        return ""
    return " ".join(previous.split())
