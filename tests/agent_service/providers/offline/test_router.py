"""The offline provider's routing from a table: data to SQL, policy to documents, the rest general,
and follow-ups keep the route of the question they follow."""

from __future__ import annotations

from typing import Any

import pytest

from agent_service.providers.base import AskContext, UsageMeter
from agent_service.providers.offline.provider import OfflineProvider


def ask(question: str, memory: dict[str, Any] | None = None) -> AskContext:
    return AskContext(question=question, history=(), memory=memory or {}, usage=UsageMeter())


ROUTES = [
    # data questions
    ("How many technicians are active?", "sql"),
    ("How many technicians are on leave?", "sql"),
    ("List completed jobs in October", "sql"),
    ("What was our revenue last month?", "sql"),
    ("Top 5 technicians by revenue this year", "sql"),
    ("Who are our top customers?", "sql"),
    ("Average hourly rate of our techs", "sql"),
    ("Which jobs are unassigned?", "sql"),
    ("How many commercial customers do we have?", "sql"),
    ("Who was the busiest technician in October?", "sql"),
    ("Show me the newest hires", "sql"),
    ("Hi! How many jobs are scheduled today?", "sql"),
    # policy questions
    ("What is the overtime policy?", "rag"),
    ("How much do we pay for on-call?", "rag"),
    ("Do I need to wear PPE on a roof?", "rag"),
    ("How many vacation days do I get?", "rag"),
    ("How much PTO carries over?", "rag"),
    ("Can I expense mileage for my own car?", "rag"),
    ("Am I allowed to take the company van home?", "rag"),
    ("What are the safety rules for ladders?", "rag"),
    ("How do I get reimbursed for meals?", "rag"),
    # small talk and unrelated
    ("Hello!", "general"),
    ("Thanks, that's all", "general"),
    ("What can you do?", "general"),
    ("What's the weather like in Denver tomorrow?", "general"),
    ("Tell me a joke", "general"),
    ("What is the capital of France?", "general"),
]


@pytest.mark.parametrize(("question", "route"), ROUTES)
async def test_routes_each_kind_of_question(question: str, route: str) -> None:
    choice = await OfflineProvider().classify(ask(question))
    assert choice.route == route, choice.reason
    assert 0.0 <= choice.confidence <= 1.0
    assert choice.reason.strip() and "\n" not in choice.reason


@pytest.mark.parametrize(
    ("question", "previous"),
    [
        ("tell me about the first one", "sql"),
        ("show them", "sql"),
        ("and the second one?", "sql"),
        ("what about those?", "rag"),
        ("tell me more", "rag"),
    ],
)
async def test_follow_up_without_its_own_signal_keeps_the_previous_route(
    question: str, previous: str
) -> None:
    choice = await OfflineProvider().classify(ask(question, {"last_route": previous}))
    assert choice.route == previous
    assert "follow-up" in choice.reason


async def test_follow_up_with_its_own_signal_is_routed_by_it() -> None:
    provider = OfflineProvider()
    after_policy = await provider.classify(
        ask("and how many technicians are on leave?", {"last_route": "rag"})
    )
    assert after_policy.route == "sql"
    after_data = await provider.classify(
        ask("and what is the overtime policy?", {"last_route": "sql"})
    )
    assert after_data.route == "rag"


async def test_clear_questions_are_more_confident_than_vague_ones() -> None:
    provider = OfflineProvider()
    clear = await provider.classify(ask("How many technicians are active?"))
    vague = await provider.classify(ask("What is the capital of France?"))
    assert clear.confidence > vague.confidence


async def test_a_garbage_last_route_in_memory_is_never_inherited() -> None:
    choice = await OfflineProvider().classify(ask("what about those?", {"last_route": "drop"}))
    assert choice.route == "general"
    assert "follow-up" not in choice.reason
