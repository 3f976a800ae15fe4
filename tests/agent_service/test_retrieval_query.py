"""Query rewriting: a question's intent words become the policies' words, the same for both
stores, and never an FTS operator."""

from __future__ import annotations

import pytest

from agent_service.storage.intents import INTENTS, intent_words
from agent_service.storage.query import expand_query, search_query


@pytest.mark.parametrize(
    ("question", "policy_words"),
    [
        ("when does overtime kick in", {"applies", "beyond"}),
        ("how far ahead must I ask for time off", {"request", "ahead", "pto"}),
        ("what gear do I need", {"protective", "equipment"}),
        ("what to do after an accident", {"report", "injury", "incident"}),
        ("do we get paid extra for weekends", {"saturday", "sunday", "rate"}),
        ("whats the OT multiplier", {"rate"}),
        ("I slipped on the stairs at a customer's", {"injury", "reporting"}),
    ],
)
def test_intent_words_name_what_the_policies_say(question: str, policy_words: set[str]) -> None:
    assert policy_words <= set(intent_words(question).split())
    assert expand_query(question).startswith(" ".join(question.lower().split())[:10])


def test_shorthand_is_spelled_out() -> None:
    assert "overtime" in expand_query("OT rate?").split()


def test_a_question_without_an_intent_is_searched_as_typed() -> None:
    assert intent_words("the zebra crossing") == ""
    assert search_query("the zebra crossing") == '"zebra" OR "crossing"'


def test_intent_words_are_plain_words() -> None:
    """The table adds only lower-case words: nothing an FTS5 or tsquery parser would read."""
    for intent in INTENTS:
        assert all(word.isalpha() for word in intent.words.split()), intent.concept


def test_the_question_comes_first_within_the_term_budget() -> None:
    question = " ".join(f"word{i}" for i in range(40)) + " accident"
    assert search_query(question).split(" OR ")[0] == '"word0"'
    assert search_query(question).count(" OR ") == 31
