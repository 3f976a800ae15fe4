"""Section-aware chunks of a markdown document, shared by both document stores.

Each section (a heading and the paragraphs under it) is its own chunk, and the chunk's text starts
with its heading line, so a passage always says which section it is ("## Requesting time off"
above "at least three weeks ahead"). A section longer than `max_chars` is cut between paragraphs
(a paragraph longer than that at word boundaries), and every piece repeats the heading. The
document's title heading carries no text of its own: it is stored as the passage's title.

`CHUNK_FORMAT` is the version of this layout. A store records it; when it changes, the seed path
rebuilds the stores (see `SqliteDocumentStore.is_current` and `PostgresDocumentStore.rechunk`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

CHUNK_FORMAT: Final = 2
"""1: paragraphs packed up to 900 characters across sections; 2: one section per chunk, with its
heading (and a heading column ranked above the body)."""

HEADING_RE: Final = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


@dataclass(frozen=True, slots=True)
class ChunkLimits:
    """A chunk holds at most `max_chars` characters (its heading line included)."""

    max_chars: int = 900


@dataclass(frozen=True, slots=True)
class Chunk:
    heading: str
    """The section's heading ('' for text before the first heading)."""
    text: str
    """The heading line, a blank line, then the section's paragraphs."""


def chunk_sections(text: str, limits: ChunkLimits, title: str = "") -> list[Chunk]:
    """The chunks of markdown `text`: one or more per section, each starting with its heading."""
    chunks: list[Chunk] = []
    for heading_line, heading, paragraphs in _sections(text):
        if not paragraphs:
            continue  # a title or a heading that only groups sub-sections
        if heading_line and heading == title and not chunks and heading_line.startswith("# "):
            heading_line = ""  # the title itself is the passage's title: no need to repeat it
        room = max(1, limits.max_chars - len(heading_line) - 2)
        current: list[str] = []
        size = 0
        pieces = [piece for paragraph in paragraphs for piece in _split_long(paragraph, room)]
        for piece in pieces:
            if current and size + len(piece) + 2 > room:
                chunks.append(_chunk(heading_line, heading, current))
                current, size = [], 0
            current.append(piece)
            size += len(piece) + 2
        if current:
            chunks.append(_chunk(heading_line, heading, current))
    return chunks


def chunk_text(text: str, limits: ChunkLimits) -> list[str]:
    """The texts of `chunk_sections(text, limits)`."""
    return [chunk.text for chunk in chunk_sections(text, limits)]


def first_heading(text: str) -> str | None:
    """The text of the first heading of markdown `text`, if any."""
    for line in text.splitlines():
        match = HEADING_RE.match(line)
        if match:
            return match.group(2).strip() or None
    return None


def _chunk(heading_line: str, heading: str, paragraphs: list[str]) -> Chunk:
    body = "\n\n".join(paragraphs)
    return Chunk(heading, f"{heading_line}\n\n{body}" if heading_line else body)


def _sections(text: str) -> Iterator[tuple[str, str, list[str]]]:
    """(heading line, heading text, paragraphs) of each section, in order."""
    heading_line, heading = "", ""
    paragraphs: list[str] = []
    paragraph: list[str] = []
    for line in [*text.splitlines(), ""]:
        match = HEADING_RE.match(line)
        if match or not line.strip():
            if paragraph:
                paragraphs.append("\n".join(paragraph))
                paragraph = []
            if match:
                yield heading_line, heading, paragraphs
                heading_line, heading, paragraphs = line.strip(), match.group(2).strip(), []
        else:
            paragraph.append(line.rstrip())
    yield heading_line, heading, paragraphs


def _split_long(block: str, max_chars: int) -> Iterator[str]:
    """A block longer than `max_chars`, cut at word boundaries."""
    while len(block) > max_chars:
        cut = block.rfind(" ", 0, max_chars)
        cut = cut if cut > 0 else max_chars
        yield block[:cut].rstrip()
        block = block[cut:].lstrip()
    if block:
        yield block
