"""Deterministic routing: data questions to SQL, policy questions to documents, the rest general.

Each route has weighted keyword patterns; the highest total wins. A question with no signal of its
own that reads as a follow-up ("tell me about the first one", "show them") keeps the previous route.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from agent_service.providers.base import RouteChoice
from agent_service.providers.offline.guessed_names import guess_names
from agent_service.providers.offline.names import find_names
from agent_service.providers.offline.reading import MAX_QUESTION_CHARS
from agent_service.providers.offline.refusals import missing_field, refusal_for
from agent_service.providers.offline.wording import normalise, unknown_words
from agent_service.storage.intents import policy_topics, spelled_out
from contracts.agent_api import Route

_SIGNALS: Final[dict[Route, tuple[tuple[str, float, str], ...]]] = {
    "sql": (
        (r"how many|number of|count|total|sum|average|avg|mean", 2.0, "asks for a number"),
        (
            r"list|show|which|top \d+|top|most|least|busiest|highest|lowest|newest|biggest",
            1.0,
            "asks for a list or ranking",
        ),
        (
            r"technicians?|techs?|customers?|clients?|jobs?|work orders?|appointments?"
            r"|schedule|calendar|agenda|booked|hourly|an hour|per hour|been with us",
            2.5,
            "names our business data",
        ),
        (
            r"(?:with us|been here|worked here|working here) (?:the )?longest|longest[- ]serving"
            r"|most senior|tenure|seniority|percent(?:age)?|proportion|share of",
            1.5,
            "asks about staff records or a share",
        ),
        (
            r"revenue|earn(?:ed|ings)?|income|sales|billed|hourly rates?|hired|hires|make|made"
            r"|money|pay rates?|wages?|(?:\w+'s|what's|whats|their|his|her) (?:hourly )?rate",
            2.5,
            "asks about revenue or staff records",
        ),
        (
            r"active|inactive|on leave|scheduled|in progress|completed|cancell?(?:ed|ations?)"
            r"|unassigned"
            r"|overdue",
            1.5,
            "mentions a record status",
        ),
        (
            r"specialt(?:y|ies)|segments?|residential|commercial|city|cities",
            1.5,
            "mentions a record field",
        ),
        (
            r"who is|tell me about|more about|details (?:on|for|about)",
            1.5,
            "asks about someone on record",
        ),
        (
            r"this month|last month|this year|last year|today|yesterday|this week|last week"
            r"|in (?:january|february|march|april|may|june|july|august|september|october"
            r"|november|december)|20\d\d",
            1.0,
            "names a period",
        ),
    ),
    "rag": (
        (
            r"polic(?:y|ies)|handbook|guidelines?|procedures?|rules?|regulations?",
            3.0,
            "asks about policy",
        ),
        (r"overtime|on[- ]call|standby|after[- ]hours", 3.0, "asks about overtime or on-call"),
        (
            r"safety|ppe|protective|hard ?hats?|gloves|goggles|harness|ladders?|lockout|tagout"
            r"|hazard\w*|injur\w*|accidents?",
            3.0,
            "asks about safety",
        ),
        (
            r"time off|pto|vacations?|holidays?|sick (?:leave|days?)|leave policy"
            r"|parental leave|bereavement|annual leave|days off",
            3.0,
            "asks about time off",
        ),
        (
            r"expenses?|expensing|mileage|reimburs\w*|per diem|receipts?|meals?|travel"
            r"|company (?:car|vehicle|card)|fuel|tools? allowance",
            3.0,
            "asks about expenses",
        ),
        (
            r"am i allowed|are we allowed|allowed to|can i|may i|do i have to|am i required"
            r"|required to|entitled",
            2.0,
            "asks what is allowed",
        ),
        (
            r"uniforms?|dress code|training|certifications?|licen[cs]es?|benefits|harassment"
            r"|conduct",
            2.0,
            "asks about workplace rules",
        ),
        (
            r"how much do we pay|pay for|paid for|compensat\w*|pay rate for|paid extra|extra pay"
            r"|premium|double time|time and a half|holiday pay|weekends?|night shifts?|stipend"
            r"|allowance|kick(?:s)? in",
            2.0,
            "asks about pay rules",
        ),
        (
            r"gear|boots|equipment|tools?|accidents?|crash\w*|incidents?|notice|in advance"
            r"|ahead of time|how far ahead|request (?:time|leave|days)|days? off|dress"
            r"|vehicles?|vans?|driving|commut\w*",
            2.0,
            "asks about workplace rules",
        ),
        (
            r"^(?:do|does|are|is|can|will|should|must|am|may|if) (?:we|i|you|techs?|technicians?"
            r"|employees?|staff|they|someone|a tech|a technician)",
            1.5,
            "asks a yes or no question about the rules",
        ),
    ),
    "general": (
        (r"hi|hello|hey|good (?:morning|afternoon|evening)|greetings|yo", 3.0, "is a greeting"),
        (r"thanks|thank you|cheers|bye|goodbye", 3.0, "is small talk"),
        (
            r"what can you do|who are you|what are you|help me|how do you work"
            r"|what do you know|capabilities",
            3.0,
            "asks what I can do",
        ),
        (
            r"weather|joke|funny|poem|song|recipe|sports?|movie|news|stock price|bitcoin",
            3.0,
            "is off topic",
        ),
        (r"how are you|what's up|whats up", 3.0, "is small talk"),
    ),
}
_FOLLOW_UP: Final = re.compile(
    r"^(?:and|also|what about|how about|same|now|then|only|just|ok(?:ay)?|but)\b"
    r"|\b(?:them|those|these|they|their|his|her|ones|more about|tell me more|details?"
    r"|the (?:first|second|third|fourth|fifth|last|next) (?:one|job|technician|customer|result)"
    r"|compare[sd]?|vs|versus|before that|after that|the one (?:before|after)"
    r"|the (?:day|week|month|quarter|year) (?:before|after))\b"
)
_ASKS_RULES: Final = re.compile(
    r"\b(?:i|i'm|im|i've|me|my|myself|can|may|must|should|allowed|required"
    r"|(?:have|has|need|needs|supposed)\s+to)\b"
)
"""The first person or a modal: a policy concept asked as a rule ("how do I earn sick time",
"how many techs can be off at once"), not about records ("jobs where the tech got hurt")."""
_ONLY_IT: Final = re.compile(r"\bit\b")
"""'it' marks a follow-up only in a question with no signal of its own ("how much is it paid?"):
"is it ok to wear shorts" after a data question is still a policy question."""
POLICY_TOPIC_WEIGHT: Final = 2.0
"""Added to the policy route for each policy-only concept of the retrieval intent table the
question shows ("what do I wear", "extra hours", "who do I tell"), at most `MAX_POLICY_TOPICS`."""
MAX_POLICY_TOPICS: Final = 2
_ROUTES: Final[tuple[Route, ...]] = ("sql", "rag", "general")


def _score(text: str) -> dict[Route, tuple[float, list[str]]]:
    scores: dict[Route, tuple[float, list[str]]] = {}
    for route in _ROUTES:
        total, reasons = 0.0, []
        for pattern, weight, reason in _SIGNALS[route]:
            if re.search(rf"\b(?:{pattern})\b", text):
                total += weight
                if reason not in reasons:
                    reasons.append(reason)
        scores[route] = (total, reasons)
    # People ask about policies in their own words ("who signs off on extra hours"): the
    # retrieval intents that only policies answer count for the policy route.
    topics = policy_topics(text)[:MAX_POLICY_TOPICS]
    if topics:
        total, reasons = scores["rag"]
        scores["rag"] = (
            total + POLICY_TOPIC_WEIGHT * len(topics),
            [*reasons, f"asks about {' and '.join(topics)}"],
        )
    return scores


def _previous_route(memory: Mapping[str, Any]) -> Route | None:
    route = memory.get("last_route")
    return route if route in _ROUTES else None


def classify_question(question: str, memory: Mapping[str, Any]) -> RouteChoice:
    """Route `question`; follow-ups with no signal of their own keep the previous route.
    Requests refused on sight (changing data, forecasts, other companies) go to the general
    route, whose reply is the refusal."""
    if refusal_for(question, data_question=False):
        return RouteChoice("general", 0.95, "A request I refuse: the reply says why.")
    text = spelled_out(normalise(question[:MAX_QUESTION_CHARS]))
    scores = _score(text)
    names = [n for _, n in find_names(normalise(question[:MAX_QUESTION_CHARS]))]
    if scores["sql"][0] > 0 and any(" " in n and not n.isupper() for n in names):
        # "How much does Liam Patel make an hour?": a name points at someone on record.
        total, reasons = scores["sql"]
        scores["sql"] = (total + 2.0, [*reasons, "names someone on record"])
    previous = _previous_route(memory)
    ranked = sorted(_ROUTES, key=lambda r: -scores[r][0])
    best, runner_up = ranked[0], ranked[1]
    top, second = scores[best][0], scores[runner_up][0]
    follow_up = _FOLLOW_UP.search(text) is not None or (top == 0 and bool(_ONLY_IT.search(text)))
    if previous and follow_up and previous != "general" and (top < 3.0 or best == "general"):
        return RouteChoice(previous, 0.7, f"A follow-up to the previous {previous} question.")
    if (
        scores["rag"][0] < 3.0
        and scores["general"][0] < 3.0
        and not _asks_own_policy(text)
        and missing_field(text)
    ):
        # "the phone number for Harbor Brewery": a field the data doesn't have; the data route
        # says so, with what the data has instead.
        return RouteChoice("sql", 0.6, "A data question about a field the data doesn't have.")
    if top == 0:
        return RouteChoice("general", 0.4, "No data or policy terms, so answering in general.")
    if best == "general" and scores["sql"][0] + scores["rag"][0] >= top:
        # "Hi, how many jobs are open?": the greeting does not hide the real question.
        best = "sql" if scores["sql"][0] >= scores["rag"][0] else "rag"
        top, second = scores[best][0], scores["general"][0]
    if best == "sql" and _policy_signal(text, scores) and _not_data(question, text):
        # "How many days of PTO do I get per year?": data words, but a policy question.
        best = "rag"
        top, second = sorted((scores["rag"][0], scores["sql"][0]), reverse=True)
    confidence = round(min(0.99, 0.55 + 0.45 * (top - second) / (top + second)), 2)
    what = {"sql": "data question", "rag": "policy question", "general": "general message"}[best]
    return RouteChoice(best, confidence, f"A {what}: it {' and '.join(scores[best][1][:2])}.")


def _policy_signal(text: str, scores: dict[Route, tuple[float, list[str]]]) -> bool:
    """Whether a question the data route would take speaks of policy: a policy word of its own,
    or a policy-only concept asked as a rule (`_ASKS_RULES`)."""
    topics = min(len(policy_topics(text)), MAX_POLICY_TOPICS)
    if scores["rag"][0] - POLICY_TOPIC_WEIGHT * topics > 0:
        return True
    return _asks_own_policy(text)


def _asks_own_policy(text: str) -> bool:
    """A policy-only concept asked in the first person or as a rule: "what do I wear", "how many
    hours can I work", "how fast do I get to an emergency at night"."""
    return bool(policy_topics(text)) and _ASKS_RULES.search(text) is not None


def _not_data(question: str, text: str) -> bool:
    """Whether a question with data words still has words no data question uses."""
    original = normalise(question[:MAX_QUESTION_CHARS])
    names = [name for _, name in find_names(original)]
    return bool(unknown_words(text, names + [n for _, n in guess_names(text, names)]))


def general_reply(question: str) -> str:
    """What to say on the general route: a refusal with its reason, a greeting back, or what
    this assistant can do."""
    if refusal := refusal_for(question, data_question=False):
        return refusal
    text = question.lower()
    examples = (
        "“How many technicians are active?”, “What was our revenue in October?” or"
        " “What is the on-call policy?”"
    )
    if re.search(r"\b(thanks|thank you|cheers)\b", text):
        return "You're welcome! Ask me anything else about your data or policies."
    if re.search(r"\b(bye|goodbye)\b", text):
        return "Goodbye!"
    if re.search(r"\b(hi|hello|hey|good (?:morning|afternoon|evening)|greetings)\b", text):
        return (
            "Hello! I can answer questions about your technicians, customers, jobs and revenue,"
            f" and about company policies. Try {examples}."
        )
    if re.search(
        r"\b(weather|joke|funny|poem|song|recipe|sports?|movie|news|stock|bitcoin)\b", text
    ):
        return (
            "That's outside what I can help with. I answer questions about your business data and"
            f" company policies — for example {examples}."
        )
    if re.search(r"\b(what can you|what do you|help|who are you|how do you work)\b", text):
        return (
            "I can count, list and total your technicians, customers, jobs and revenue (by status,"
            " month, technician, customer or city), and quote company policies on overtime,"
            f" on-call, safety, time off and expenses. Try {examples}."
        )
    # Nothing in the question names the data or a policy topic: say so rather than guess.
    return (
        "I don't have information about that: it isn't in your business data, and no policy"
        " document I know of covers it. I can count, list and total your technicians, customers,"
        " jobs and revenue (by status, month, technician, customer or city), and quote company"
        f" policies on overtime, on-call, safety, time off and expenses. Try {examples}."
    )
