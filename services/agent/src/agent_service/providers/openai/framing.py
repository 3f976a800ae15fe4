"""The `<untrusted-data>` frame: stored text inside it cannot open or close a frame tag, not even
with look-alikes (fullwidth or angle-quote `<`, Unicode hyphens, fullwidth letters, spaces or
zero-width characters inside the tag, any case)."""

from __future__ import annotations

import re
import unicodedata
from typing import Final

TAG_NAME: Final = "untrusted-data"

_OPENERS: Final = frozenset("<\u2039\u3008\u2329\u27e8\u276e\u02c2\uff1c\ufe64")
"""`<` and what a model may read as one: ‹ 〈 〈 ⟨ ❮ ˂ ＜ ﹤."""
_INVISIBLE: Final = frozenset("\u00ad\u200b\u200c\u200d\u2060\ufeff")
"""Soft hyphen and zero-width characters: dropped before matching."""
_LOOKALIKE_TAG: Final = re.compile(r"<\s*[/\u2044\u2215]?\s*untrusted[\s\-_.]*data")


def _fold(char: str) -> str:
    """What one character reads as, for tag matching: NFKC, lower case, one `-` for every dash,
    one `<` for every opener, nothing for invisible characters."""
    if char in _INVISIBLE:
        return ""
    if char in _OPENERS:
        return "<"
    if unicodedata.category(char) == "Pd" or char == "\u2212":
        return "-"
    return unicodedata.normalize("NFKC", char).lower()


def neutralise_tags(body: str) -> str:
    """`body` with the opener of every frame-tag look-alike escaped (`&lt;`), nothing else."""
    folded: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(body):
        for out in _fold(char):
            folded.append(out)
            origin.append(index)
    openers = {origin[m.start()] for m in _LOOKALIKE_TAG.finditer("".join(folded))}
    if not openers:
        return body
    return "".join("&lt;" if i in openers else c for i, c in enumerate(body))


def frame(kind: str, body: str) -> str:
    """`body` inside an untrusted-data block it cannot close early."""
    return f'<{TAG_NAME} kind="{kind}">\n{neutralise_tags(body)}\n</{TAG_NAME}>'
