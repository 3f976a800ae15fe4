"""Policy questions as people type them (without the policy's own words where they would not use
them), each with the document sections that answer it, for every demo company.

A question of `SHARED` is asked of every company that has a document for it; `OWN` questions are
about one company's particular rules. An entry lists every section that answers the question
(weekend pay is an overtime rate at one company and a weekend on-call stipend at another).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from agent_service.providers.base import Passage

Section = tuple[str, str]
"""(doc id, section heading)."""

COMPANIES: Final = ("acme-hvac", "bluepeak-plumbing", "citywide-electric")


def every(
    doc_id: str, heading: str, companies: tuple[str, ...] = COMPANIES
) -> dict[str, tuple[Section, ...]]:
    """The same section answers it at each of `companies`."""
    return dict.fromkeys(companies, ((doc_id, heading),))


# question -> {company: sections that answer it}; a company left out has no such policy
SHARED: Final[dict[str, dict[str, tuple[Section, ...]]]] = {
    "when does overtime kick in": every("overtime", "When overtime applies"),
    "is a 12 hour day extra pay?": every("overtime", "When overtime applies"),
    "how much more do I make per hour for extra hours": every("overtime", "Rate"),
    "do we get paid extra for weekends": {
        "acme-hvac": (("overtime", "When overtime applies"), ("overtime", "Rate")),
        "bluepeak-plumbing": (("overtime", "When overtime applies"), ("overtime", "Rate")),
        "citywide-electric": (("overtime", "Rate"), ("on-call", "Stipend and pay")),
    },
    "who has to sign off before I stay late": every("overtime", "Approval"),
    "what's the longest shift I'm allowed to work": every("overtime", "Limits"),
    "how far ahead must I ask for time off": every("time-off", "Requesting time off"),
    "how many vacation days do I get a year": every("time-off", "Paid time off"),
    "can I roll over vacation I didn't use": every("time-off", "Paid time off"),
    "what happens if I need a few months off for a family emergency": every("time-off", "Leave"),
    "what to do after an accident": every("safety", "Reporting"),
    "I got hurt on a job, who do I tell": every("safety", "Reporting"),
    "what gear do I need": {
        "acme-hvac": (("tool-allowance", "What it covers"), ("safety", "Carbon monoxide")),
        "bluepeak-plumbing": (("safety", "Biohazards"), ("tool-allowance", "What it covers")),
        "citywide-electric": (("safety", "Arc flash"),),
    },
    "does the tool money cover safety glasses and gloves": every(
        "tool-allowance", "What it covers", COMPANIES[:2]
    ),
    "how much can I spend on tools each year": every(
        "tool-allowance", "Annual allowance", COMPANIES[:2]
    ),
    "how do I get paid back for a wrench I bought": every(
        "tool-allowance", "How to claim", COMPANIES[:2]
    ),
    "what do I get for driving my own car": every("expenses", "Mileage"),
    "do I need to keep proof of what I spent": every("expenses", "Receipts"),
    "is food covered on long jobs": {
        "acme-hvac": (("expenses", "Meals and travel"),),
        "bluepeak-plumbing": (("expenses", "Meals"),),
        "citywide-electric": (("expenses", "Meals and travel"),),
    },
    "how quickly do I have to show up on an emergency call at night": every(
        "on-call", "Response time"
    ),
    "what's the pay for being on call": every("on-call", "Stipend and pay"),
    "how often am I on call": every("on-call", "Rotation"),
    # a second set, written after the intent table (it found the "OT" and injury-word gaps)
    "at what point do i start earning overtime": every("overtime", "When overtime applies"),
    "whats the OT multiplier": every("overtime", "Rate"),
    "do i need my manager's ok before working late": every("overtime", "Approval"),
    "how many hours a day can i work tops": every("overtime", "Limits"),
    "how much notice do i give for a vacation": every("time-off", "Requesting time off"),
    "how much PTO do I earn": every("time-off", "Paid time off"),
    "my wife is having a baby, can I take leave": every("time-off", "Leave"),
    "i slipped and twisted my ankle at a customer's house": every("safety", "Reporting"),
    "mileage rate?": every("expenses", "Mileage"),
    "how long do i have to turn in expenses": every("expenses", "Receipts"),
    "how fast do I need to answer the phone when on call": every("on-call", "Response time"),
    "do I get anything extra for on-call weeks": every("on-call", "Stipend and pay"),
    "is there money for buying my own tools": every(
        "tool-allowance", "Annual allowance", COMPANIES[:2]
    ),
    "do I get paid more on holidays": every("overtime", "Rate"),
}

OWN: Final[dict[str, dict[str, tuple[Section, ...]]]] = {
    "acme-hvac": {
        "the CO alarm went off in a customer's house, what now": (("safety", "Carbon monoxide"),),
        "can anyone open up an AC line": (("safety", "Refrigerants"),),
        "rules for ladders when working on top of a building": (("safety", "Ladders and roofs"),),
        "can I put supply house parts on my own credit card": (
            ("expenses", "Parts bought on site"),
        ),
        "hotel for out of town work": (("expenses", "Meals and travel"),),
        "what must be in the van during my on-call week": (("on-call", "Equipment"),),
        "when is the on-call schedule posted": (("on-call", "Rotation"),),
        "can I take a week off in January": (("time-off", "Requesting time off"),),
    },
    "bluepeak-plumbing": {
        "can I go into a crawlspace by myself": (("safety", "Sewer gas and confined spaces"),),
        "how long before I can empty a water heater tank": (("safety", "Hot water and gas"),),
        "are bridge fees paid back": (("expenses", "Parking and tolls"),),
        "when does the next month's on-call list come out": (("on-call", "Rotation"),),
        "sewage cleanup, what should I wear": (("safety", "Biohazards"),),
        "can I take time off around Christmas": (("time-off", "Requesting time off"),),
        "do I get sick days": (("time-off", "Paid time off"),),
    },
    "citywide-electric": {
        "what do I do before touching a breaker panel": (("safety", "Lockout/tagout"),),
        "working outside in the summer heat": (("safety", "Heat"),),
        "does the company pay for my license renewal": (("expenses", "Licenses"),),
        "is overtime by the day or by the week": (("overtime", "When overtime applies"),),
        "can I take vacation in early August": (("time-off", "Requesting time off"),),
        "who covers emergencies on weeknights": (("on-call", "Rotation"),),
        "working on a live panel, what's required": (("safety", "Arc flash"),),
    },
}


def questions() -> list[tuple[str, str, tuple[Section, ...]]]:
    """Every (company, question, answering sections), shared questions first."""
    table = [
        (company, question, sections)
        for question, answers in SHARED.items()
        for company, sections in answers.items()
    ]
    table += [
        (company, question, sections)
        for company, own in OWN.items()
        for question, sections in own.items()
    ]
    return table


Search = Callable[[str, str, int], Awaitable[list[Passage]]]
KS: Final = (1, 3, 5)
REQUIRED_RECALL_AT_3: Final = 0.95


def answers(passage: Passage, sections: tuple[Section, ...]) -> bool:
    """Whether `passage` is (or holds) one of `sections`."""
    return any(
        passage.doc_id == doc_id and f"## {heading}" in passage.text for doc_id, heading in sections
    )


async def first_hit(
    search: Search, company: str, question: str, sections: tuple[Section, ...]
) -> int | None:
    """The 1-based rank of the first answering passage among the top 5, or None."""
    passages = await search(company, question, max(KS))
    return next((rank for rank, p in enumerate(passages, 1) if answers(p, sections)), None)


def recall(ranks: list[int | None], k: int) -> float:
    """The share of `ranks` at or above `k`."""
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks)
