"""Word-ish tokenisation: how text is cut into stream deltas and how usage is estimated.

The estimate is deliberately simple and deterministic, not a real BPE: one token per run of word
characters or per run of punctuation, each carrying the whitespace that precedes it. Joining the
pieces always reproduces the text exactly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# Every character is whitespace, a word character or neither, so the alternation covers the text
# with no gaps: leading whitespace rides on the next word or punctuation run; trailing whitespace
# becomes a piece of its own.
_PIECE = re.compile(r"\s*(?:\w+|[^\w\s]+)|\s+")

_FILLER_TEXT = (
    "the quick brown fox jumps over the lazy dog while seven wizards quietly hum a tune "
    "about distant rivers, bright lanterns and patient engines."
)
_FILLER_WORDS = tuple(_FILLER_TEXT.split(" "))


def split_tokens(text: str) -> list[str]:
    """Cut `text` into word-ish pieces whose concatenation is exactly `text`."""
    return _PIECE.findall(text)


def count_tokens(text: str) -> int:
    """Estimate the token count of `text`: the number of pieces `split_tokens` would return."""
    return len(_PIECE.findall(text))


def group_pieces(text: str, *, chunk_tokens: int, chunk_chars: int) -> list[tuple[str, int]]:
    """Cut `text` into deltas of `chunk_chars` characters (if > 0) or else `chunk_tokens` pieces.

    Each delta comes with its token weight, which paces it under a tokens-per-second limit.
    """
    if not text:
        return []
    if chunk_chars > 0:
        parts = [text[i : i + chunk_chars] for i in range(0, len(text), chunk_chars)]
        return [(part, count_tokens(part)) for part in parts]
    pieces = split_tokens(text)
    if chunk_tokens <= 1:
        return [(piece, 1) for piece in pieces]
    return [
        ("".join(pieces[i : i + chunk_tokens]), len(pieces[i : i + chunk_tokens]))
        for i in range(0, len(pieces), chunk_tokens)
    ]


def truncate_tokens(text: str, limit: int) -> tuple[str, bool]:
    """Keep the first `limit` pieces of `text`; say whether anything was cut."""
    pieces = split_tokens(text)
    if len(pieces) <= limit:
        return text, False
    return "".join(pieces[:limit]), True


def filler_text(tokens: int) -> str:
    """Deterministic prose of exactly `tokens` pieces, for load tests that need long answers."""
    words: list[str] = []
    count = 0
    i = 0
    while count < tokens:
        word = _FILLER_WORDS[i % len(_FILLER_WORDS)]
        i += 1
        # "rivers," is two pieces; never overshoot the requested count.
        cost = count_tokens(word)
        if count + cost > tokens:
            word = word.rstrip(",.")
            cost = count_tokens(word)
        words.append(word)
        count += cost
    return " ".join(words)


def count_message_tokens(texts: Sequence[str], *, extra: str = "") -> int:
    """Estimate prompt tokens: each message's text + 4 framing tokens, + 3 to prime the reply.

    `extra` is any other prompt material that costs tokens (the tools' JSON schemas).
    """
    return sum(count_tokens(text) + 4 for text in texts) + count_tokens(extra) + 3
