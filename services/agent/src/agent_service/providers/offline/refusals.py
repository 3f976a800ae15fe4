"""Questions the offline provider refuses on sight, each with the reason said plainly.

Changing data, forecasting, other companies' data, instructions to ignore the rules and fields the
data does not have are never answered with a nearby number: the reply says what cannot be done and
what can. The checks read the question only; they never depend on the data.
"""

from __future__ import annotations

import re
from typing import Final

from agent_service.demo.data import COMPANIES

CAN_DO: Final = (
    "I can count, list and total your technicians, customers, jobs and revenue by status,"
    " period, technician, customer or city, and quote your company's policies."
)
READ_ONLY: Final = (
    "I can only read data; I can't change records (delete, update, add, assign or cancel"
    " anything). Please make that change in your scheduling system. " + CAN_DO
)
FORECAST: Final = (
    "I can't forecast or predict: I only have recorded data about jobs that have already been"
    " scheduled or completed, so I won't guess future numbers. I can tell you what happened in a"
    " past period, for example revenue last month."
)
OTHER_COMPANY: Final = (
    "I can only see your own company's data; other companies' records are not visible to me, so"
    " I can't answer for them. " + CAN_DO
)
INJECTION: Final = (
    "I can't ignore or change my instructions, and I can only see your own company's data. "
    + CAN_DO
)

_POLITE: Final = (
    r"(?:please|pls|kindly|can you|could you|would you|will you|can u|i (?:want|need|would like)"
    r" (?:you )?to|i'd like (?:you )?to|go ahead and|let's|lets|help me|now|ok(?:ay)?|and|then)"
)
_WRITE_VERBS: Final = (
    r"delete|remove|erase|wipe|purge|drop|insert|update|modify|edit|change|set|reset|assign"
    r"|reassign|unassign|cancel|add|create|mark|close|reopen|schedule|reschedule|book|move"
    r"|rename|fire|hire|give|raise|lower|increase|decrease|refund|void|archive|merge|transfer"
)
_WRITE_START: Final = re.compile(rf"^(?:{_POLITE}[\s,]+)*(?:{_WRITE_VERBS})\b")
_WRITE_ANYWHERE: Final = re.compile(
    r"\b(?:delete|erase|wipe out|purge|drop table|truncate|insert into|update the|modify"
    r"|overwrite|get rid of)\b"
)
_FORECAST: Final = re.compile(
    r"\b(?:forecast\w*|predict\w*|projection|projected|project(?:ed)? (?:revenue|sales|jobs)"
    r"|extrapolat\w*|expect(?:ed)? (?:revenue|to (?:make|earn|have|do|complete))"
    r"|estimate(?:d)? (?:future|next|revenue for next)"
    r"|will (?:we|our|revenue|the revenue|sales|it) (?:make|earn|be|have|get|do|bring|look)"
    r"|going to (?:make|earn|be|have|bring)|(?:are|is) likely to|trend(?:ing)? (?:next|for next)"
    r"|(?:do|does|would|should) (?:you|we|i) expect|anticipat\w*|outlook)"
)
_OTHER_COMPANY: Final = re.compile(
    r"\b(?:other|another|different|all|every|each|both) (?:the )?(?:compan(?:y|ies)|tenants?"
    r"|businesses|firms|organi[sz]ations?|clients' companies)\b"
    r"|\b(?:competitors?|competition|rival)\b|\bacross (?:all )?(?:companies|tenants)\b"
    r"|\bcompan(?:y|ies) (?:other than|besides) (?:ours|us|mine)\b"
)
_INJECTION: Final = re.compile(
    r"\b(?:ignore|disregard|forget|bypass|override|skip) (?:\w+ ){0,3}(?:instructions?|rules?"
    r"|prompts?|guard\w*|restrictions?|filters?|tenant\w*|security)\b"
    r"|\bsystem prompt\b|\byou are now\b|\bpretend (?:you|to)\b|\bact as\b|\bdeveloper mode\b"
    r"|\bjailbreak\b|\bdan mode\b|\badmin(?:istrator)? (?:mode|access|override)\b"
    r"|\bwithout (?:the )?(?:company|tenant) (?:filter|restriction)\b|\bcompany_id\b"
)
# A company is named by its id, its full name, or its first word as a company ("Bluepeak's
# revenue", "Citywide Electric"); a customer called "Citywide Trap Holdings" is no company.
_COMPANY_NAMES: Final = (
    tuple(re.escape(company.id) for company in COMPANIES)
    + tuple(re.escape(company.name.lower()) for company in COMPANIES)
    + tuple(
        re.escape(company.name.split()[0].lower())
        + r"(?:'s?|s'| (?:heating|plumbing|electric|hvac|company|co|inc|llc)\b|$|[?.!,]"
        + r"| (?:have|has|had|do|does|did|make|makes|made|earn|earns|pay|pays|charge|charges"
        + r"|employ|employs|bring|brings)\b)"
        for company in COMPANIES
    )
)
_NAMED_COMPANY: Final = re.compile(rf"\b(?:{'|'.join(_COMPANY_NAMES)})")
_QUOTED: Final = re.compile(r"\"[^\"]*\"|“[^”]*”")

# Fields the data does not have: (pattern, what is missing, what the data has instead).
_MISSING: Final[tuple[tuple[str, str, str], ...]] = (
    (r"priorit(?:y|ies|ised|ized)|urgent|urgency|emergenc(?:y|ies)", "priority",
     "jobs have a status (scheduled, in progress, completed, cancelled), dates and revenue"),
    (r"ratings?|rated|reviews?|stars?|satisf\w*|feedback|nps|happy|complaints?", "ratings",
     "jobs have a status, dates and revenue; nothing records how customers rated the work"),
    (r"profits?|profitab\w*|margins?|costs?|expenses of|parts cost|material cost|overhead",
     "costs or profit", "jobs record revenue only, not costs"),
    (r"phone(?: numbers?)?|e-?mails?|addresses|street address|contact details|zip(?: code)?",
     "contact details (phone numbers, emails or addresses)",
     "customers have a name, city and segment (residential or commercial)"),
    (r"invoices?|unpaid|paid invoices|payments?|owe[sd]?|owing|balances?|overdue payments?",
     "invoices or payments", "jobs record the revenue of completed work, not billing"),
    (r"hours worked|timesheets?|clock(?:ed)? hours|overtime hours|hours logged|utili[sz]ation",
     "hours worked", "technicians have an hourly rate, and jobs have dates"),
    (r"salar(?:y|ies)|annual pay|yearly pay|bonus(?:es)?", "salaries",
     "technicians have an hourly rate"),
    (r"ages?|birthdays?|how old|gender|date of birth", "personal details",
     "technicians have a name, status, specialty, hire date and hourly rate"),
    (r"new (?:customers|clients)|customers? (?:signed up|joined|acquired)|signups?|churn\w*",
     "when customers signed up", "customers have a name, city and segment; I can count the"
     " customers who had jobs in a period"),
    (r"(?:start|end|arrival) times?|what time|o'?clock|how many hours", "times of day",
     "jobs have dates, not times"),
)  # fmt: skip


def missing_field(text: str) -> str | None:
    for pattern, field, instead in _MISSING:
        if re.search(rf"\b(?:{pattern})\b", text):
            return (
                f"The data doesn't have {field}, so I can't answer that part; {instead}."
                f" I won't give a different number in its place. {CAN_DO}"
            )
    return None


def refusal_for(question: str, *, data_question: bool = True) -> str | None:
    """The refusal `question` gets on sight, or None. `data_question` adds the checks that only
    make sense for data (missing fields); requests to write, forecast, see other companies or
    ignore instructions are refused on every route."""
    # A quoted phrase is a name to look up, never a request ("jobs for customer \"Drop Co\"").
    text = " ".join(_QUOTED.sub(" ", question).lower().replace("’", "'").split())
    if _INJECTION.search(text):
        return INJECTION
    if _OTHER_COMPANY.search(text) or _NAMED_COMPANY.search(text):
        return OTHER_COMPANY
    if _WRITE_START.search(text) or _WRITE_ANYWHERE.search(text):
        return READ_ONLY
    if _FORECAST.search(text):
        return FORECAST
    if data_question:
        return missing_field(text)
    return None
