"""The word-ish tokeniser: deltas rebuild the text exactly; estimates are deterministic."""

from __future__ import annotations

import pytest

from fake_openai.tokens import (
    count_tokens,
    filler_text,
    group_pieces,
    split_tokens,
    truncate_tokens,
)

TEXTS = [
    "",
    "hello",
    "Hello, world!",
    "  leading and trailing  ",
    "line one\nline two\n\n\tindented",
    'JSON: {"a": [1, 2.5, "x y"]}',
    "naïve café — 東京 😀 done.",
    "SELECT count(*) FROM technicians WHERE active = 1;",
]


@pytest.mark.parametrize("text", TEXTS)
def test_pieces_join_back_to_the_text(text: str) -> None:
    assert "".join(split_tokens(text)) == text
    for chunk_tokens, chunk_chars in [(1, 0), (3, 0), (1, 4)]:
        deltas = group_pieces(text, chunk_tokens=chunk_tokens, chunk_chars=chunk_chars)
        assert "".join(d for d, _ in deltas) == text


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        ("Hello, world!", ["Hello", ",", " world", "!"]),
        ("a  b ", ["a", "  b", " "]),
        ("x=1", ["x", "=", "1"]),
    ],
)
def test_pieces_keep_whitespace_with_the_next_word(text: str, pieces: list[str]) -> None:
    assert split_tokens(text) == pieces
    assert count_tokens(text) == len(pieces)


def test_chunk_tokens_groups_pieces_and_weighs_them() -> None:
    assert group_pieces("a b c d e", chunk_tokens=2, chunk_chars=0) == [
        ("a b", 2),
        (" c d", 2),
        (" e", 1),
    ]


def test_truncation_keeps_the_first_tokens() -> None:
    assert truncate_tokens("one two three", 2) == ("one two", True)
    assert truncate_tokens("one two", 2) == ("one two", False)


@pytest.mark.parametrize("tokens", [0, 1, 7, 31, 500])
def test_filler_has_exactly_the_requested_tokens(tokens: int) -> None:
    assert count_tokens(filler_text(tokens)) == tokens
    assert filler_text(tokens) == filler_text(tokens)
