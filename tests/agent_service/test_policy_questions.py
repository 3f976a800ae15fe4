"""Policy questions asked in people's own words, one kind of failure per test: routed to the
documents (not refused, not counted as data), the sentence that answers quoted first, and a short
follow-up searched together with the policy question it follows. Phrasings are not the eval's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from support.sse_client import stream_chat

from agent_service.providers.base import AskContext, Passage, UsageMeter
from agent_service.providers.offline.citations import answer_from_passages_text
from agent_service.providers.offline.provider import OfflineProvider
from agent_service.storage.intents import literal_text, policy_topics
from agent_service.storage.query import follow_up_context, search_query

Mint = Callable[..., str]


def ask(question: str, memory: dict[str, Any] | None = None) -> AskContext:
    return AskContext(question=question, history=(), memory=memory or {}, usage=UsageMeter())


POLICY = [
    # shorthand and misspellings of the policies' words
    "is there a weekly cap on OT",
    "how much vaction do i get",
    "what's the milage payout",
    # hours, approval and rest, without the word overtime
    "does someone have to authorize me working late",
    "my boss's ok before i pull extra hours?",
    "maximum hours a week i'm allowed",
    # safety, in the words of someone on a job
    "what should i put on before opening a live panel",
    "my coworker got zapped on site, who should i notify",
    "do we need a second guy for crawl spaces",
    "how long should the tank sit before draining it",
    "co alarm went off in the basement, now what",
    "any rules for working when it's too hot outside",
    # time off and expenses without a policy word
    "can i be off next friday if i ask today",
    "do i keep proof of what i spent on lunch",
    # a policy concept in the first person is not mistaken for a missing data field
    "how fast do i need to be at an emergency at night",
    "is there a limit on consecutive hours",
    "what should i do if i smell sewer gas",
    "when do i need fall protection on a roof",
    # a policy concept asked as a rule, not in the first person
    "how many techs can be off at once in winter",
]
DATA = [
    # data questions that share a word with a policy topic stay on the data route
    "how many drain unclogging jobs did we complete",
    "revenue from heat pump installs this year",
    "how many panel upgrades are scheduled",
    "which techs work on water heaters",
    "jobs with warranty claims this year",
    # a policy-only concept about records, not in the first person, is not a policy question
    "jobs where the tech got hurt",
    "which jobs had a gas leak",
    "revenue from trips to tacoma",
    "who worked the most extra hours last month",
    "how many emergency jobs did we do last month",
]


@pytest.mark.parametrize("question", POLICY)
async def test_policy_questions_in_peoples_words_reach_the_documents(question: str) -> None:
    choice = await OfflineProvider().classify(ask(question))
    assert choice.route == "rag", choice.reason


@pytest.mark.parametrize("question", DATA)
async def test_data_questions_with_policy_looking_words_stay_data(question: str) -> None:
    choice = await OfflineProvider().classify(ask(question))
    assert choice.route != "rag", choice.reason


def test_only_concepts_no_data_question_uses_count_for_the_router() -> None:
    assert policy_topics("what do I wear up on a ladder") == ["protective gear"]
    assert policy_topics("how many drain jobs this summer") == []
    assert policy_topics("heat pump revenue") == []


def test_idiom_words_the_policies_do_not_use_are_not_matched_literally() -> None:
    assert literal_text("who has to sign off on my extra hours") == "who has to on my"
    assert literal_text("when does double time kick in?") == "when does double time ?"
    assert literal_text("when does OT start") == "overtime"
    assert "off" in literal_text("how many days off do I get").split()


def passage(n: int, title: str, text: str) -> Passage:
    return Passage(doc_id=f"d{n}", title=title, chunk_id=f"d{n}#0", text=text, score=1.0 / n)


TIME_OFF = passage(
    1,
    "Time off",
    "## Requests\n\nNo more than three people may be off on the same day in July, and longer"
    " trips need the owner's approval.",
)
OVERTIME = passage(
    2,
    "Overtime",
    "## Approval\n\nOvertime is approved by the foreman before the shift ends.\n\n## Rate\n\n"
    "Overtime is paid at 1.6x the base rate.",
)
TOOLS = passage(
    1, "Tools", "## Allowance\n\nEveryone gets $300 a year for hand tools used on the job."
)
SAFETY = passage(
    2, "Safety", "## Reporting\n\nReport injuries and near misses to the foreman the same day."
)
PAY = passage(
    1,
    "Pay",
    "## Pay\n\nA night on call is paid a flat $80. Overtime is paid at 1.6x.",
)


def first_quote(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("- "))


def test_an_idiom_does_not_pick_a_sentence_that_shares_its_literal_word() -> None:
    text = answer_from_passages_text("who has to sign off on my extra hours", [TIME_OFF, OVERTIME])
    assert "approved by the foreman" in first_quote(text)


def test_the_sentence_speaking_to_every_concept_beats_a_shared_literal_word() -> None:
    text = answer_from_passages_text("burned my hand at a job, who should i call", [TOOLS, SAFETY])
    assert "Report injuries" in first_quote(text)


def test_a_short_follow_up_is_answered_about_the_previous_policy_topic() -> None:
    question, context = "what is it paid at", "is overtime approved ahead of time"
    assert follow_up_context(question, context) == context
    alone = answer_from_passages_text(question, [PAY])
    followed = answer_from_passages_text(question, [PAY], context=context)
    assert "$80" in first_quote(alone)
    assert "1.6x" in first_quote(followed)


@pytest.mark.parametrize(
    ("question", "previous", "searched_with_previous"),
    [
        ("and on holidays?", "what is the overtime rate", True),
        ("how much is that", "what is the on-call stipend", True),
        ("and what about sick days and bereavement leave rules", "vacation days", False),
        ("what is the mileage rate", "what is the overtime rate", False),
        ("and on holidays?", "", False),
    ],
)
def test_only_short_follow_ups_are_searched_with_the_previous_question(
    question: str, previous: str, searched_with_previous: bool
) -> None:
    assert bool(follow_up_context(question, previous)) is searched_with_previous


def test_the_search_query_spells_out_misspelt_policy_words() -> None:
    assert '"mileage"' in search_query("milage for my truck")


async def test_a_follow_up_policy_question_searches_with_the_question_it_follows(
    agent_url: str, mint: Mint
) -> None:
    token, company = mint("u-bob", "bluepeak-plumbing"), "bluepeak-plumbing"
    first = await stream_chat(
        agent_url, token, "from which hour am I on overtime?", user="u-bob", company=company
    )
    assert first.terminal["stats"]["route"] == "rag"
    follow = await stream_chat(
        agent_url, token, "what's it paid at?", user="u-bob", company=company
    )
    assert follow.terminal["stats"]["route"] == "rag"
    (search,) = follow.of("tool_start")
    assert "overtime" in search["input"]
    assert "2x" in first_quote(follow.answer)
    assert any(s["doc_id"] == "overtime" for s in follow.terminal["stats"]["sources"])


@pytest.mark.parametrize(
    ("question", "previous", "route"),
    [
        ("how much is it paid?", "rag", "rag"),
        ("is it ok to wear shorts on site", "sql", "rag"),
        ("what was it last month", "sql", "sql"),
    ],
)
async def test_it_is_a_follow_up_only_without_a_signal_of_its_own(
    question: str, previous: str, route: str
) -> None:
    choice = await OfflineProvider().classify(ask(question, {"last_route": previous}))
    assert choice.route == route, choice.reason


def test_a_follow_up_to_an_idiom_still_knows_the_topic() -> None:
    """ "who has to sign off on my extra hours" has no literal topic word left, but its intents
    (approval, overtime) carry the topic; "is it paid" asks for the rate."""
    approval = passage(
        1,
        "Overtime",
        "## Approval\n\nOvertime needs the foreman's approval. Unapproved hours are still paid"
        " once.\n\n## Rate\n\nOvertime is paid at 1.6x the regular hourly rate.",
    )
    context = follow_up_context("and how much is it paid?", "who has to sign off on my extra hours")
    assert context
    text = answer_from_passages_text("and how much is it paid?", [approval], context=context)
    assert "1.6x" in first_quote(text)
