"""The result budget shared by both SQL engines: rows are counted and sized as they arrive, and
fetching stops at `max_rows` or `max_result_bytes`, so an executor never holds more than the cap
plus the one row (or one small batch) that crossed it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

__all__ = ["MAX_FETCH_BATCH", "ResultBudget", "value_size"]

MAX_FETCH_BATCH: Final = 16
"""The most rows an engine fetches in one round trip (PostgreSQL; SQLite fetches one at a time)."""


class ResultBudget:
    """Accepts fetched rows until `max_rows` or `max_result_bytes` would be exceeded."""

    def __init__(self, max_rows: int, max_result_bytes: int) -> None:
        if max_rows < 1 or max_result_bytes < 1:
            raise ValueError("max_rows and max_result_bytes must be positive")
        self._max_rows = max_rows
        self._max_bytes = max_result_bytes
        self._rows: list[tuple[Any, ...]] = []
        self._bytes = 0
        self._largest_row = 0
        self.truncated = False
        """True once a row was refused: the result has more rows than were kept."""

    @property
    def rows(self) -> tuple[tuple[Any, ...], ...]:
        return tuple(self._rows)

    @property
    def size(self) -> int:
        """Approximate bytes of the values kept so far."""
        return self._bytes

    def add(self, row: Sequence[Any]) -> bool:
        """Keep `row` if it fits; return whether the caller should fetch another one."""
        if self.truncated:
            return False
        if len(self._rows) >= self._max_rows:
            self.truncated = True  # the (max_rows + 1)-th row only proves there are more
            return False
        size = sum(value_size(v) for v in row)
        if self._bytes + size > self._max_bytes:
            self.truncated = True
            return False
        self._rows.append(tuple(row))
        self._bytes += size
        self._largest_row = max(self._largest_row, size)
        return True

    def next_batch(self) -> int:
        """How many rows to fetch next: one until a row's size is known, then as many as the
        remaining bytes would hold at the largest size seen (1..MAX_FETCH_BATCH), never more
        than the one extra row that proves truncation."""
        wanted = self._max_rows + 1 - len(self._rows)
        if not self._rows:
            return 1
        fits = (self._max_bytes - self._bytes) // max(self._largest_row, 1)
        return max(1, min(wanted, fits, MAX_FETCH_BATCH))


def value_size(value: Any) -> int:
    """Approximate bytes of one result value (UTF-8 for text), without copying ASCII text."""
    if isinstance(value, str):
        # ASCII is one byte per character; only other text is encoded to be measured.
        return len(value) if value.isascii() else len(value.encode("utf-8", "replace"))
    if isinstance(value, bytes | bytearray | memoryview):
        return len(value)
    return 8
