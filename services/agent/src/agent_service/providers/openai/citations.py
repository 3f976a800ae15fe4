"""Keep a streamed answer's citations honest: `[n]` survives only if passage n was given.

The model's text streams through `CitationFilter` piece by piece. Text without `[` passes at once;
from a `[` on (and trailing spaces, which a removed citation takes along), the filter holds back at
most a few characters until it knows whether they are a citation (`[2]`, `[1, 3]`, `[1][7]`).
Numbers outside 1..count are dropped from a citation, and a citation left empty is removed with
the spaces before it. Everything else is passed unchanged.
"""

from __future__ import annotations

import re
from typing import Final

_MAX_HELD: Final = 24
"""Longer than any citation we keep; a longer bracket is plain text and is let through."""
_CITATION: Final = re.compile(r"\[\s*\d+(?:\s*[,;]\s*\d+)*\s*\]")
_PREFIX: Final = re.compile(r"\[\s*(?:\d+(?:\s*[,;]\s*\d*)*\s*)?")


class CitationFilter:
    """Streams text through, repairing `[n]` citations against `count` passages given."""

    __slots__ = ("_count", "_held", "removed")

    def __init__(self, count: int) -> None:
        self._count = count
        self._held = ""
        self.removed: list[int] = []
        """The out-of-range passage numbers dropped so far (for logs and tests)."""

    def feed(self, piece: str) -> str:
        """The part of the text so far that is safe to send now."""
        if not self._held and "[" not in piece and piece[-1:] != " ":
            return piece  # the common case: two checks per token
        text = self._held + piece
        self._held = ""
        out: list[str] = []
        start = 0
        while True:
            at = text.find("[", start)
            if at < 0:
                rest = text[start:]
                keep = len(rest.rstrip(" "))
                # trailing spaces wait for the next piece: a citation removed there takes them
                out.append(rest[:keep])
                self._held = rest[keep:]
                break
            out.append(text[start:at])
            whole = _CITATION.match(text, at)
            if whole is not None and whole.end() - at < _MAX_HELD:
                out.append(self._repair(whole.group(), out))
                start = whole.end()
                continue
            partial = _PREFIX.match(text, at)
            if partial is not None and partial.end() == len(text) and len(text) - at < _MAX_HELD:
                # could still become a citation: wait for more, with the spaces before it, so
                # a citation removed later takes its space along
                keep = len(out[-1].rstrip(" "))
                self._held = out[-1][keep:] + text[at:]
                out[-1] = out[-1][:keep]
                break
            out.append("[")
            start = at + 1
        return "".join(out)

    def flush(self) -> str:
        """Whatever is still held at the end of the stream (an unfinished bracket, as text)."""
        held, self._held = self._held, ""
        return held

    def _repair(self, citation: str, out: list[str]) -> str:
        numbers = [int(n) for n in re.findall(r"\d+", citation)]
        kept = [n for n in numbers if 1 <= n <= self._count]
        self.removed.extend(n for n in numbers if not 1 <= n <= self._count)
        if len(kept) == len(numbers):
            return citation
        if kept:
            return "[" + ", ".join(str(n) for n in kept) + "]"
        if out and out[-1].endswith(" "):
            out[-1] = out[-1][:-1]  # "policy [7]." reads "policy." once the citation is gone
        return ""
