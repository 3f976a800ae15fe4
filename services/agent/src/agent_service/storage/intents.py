"""The intent table: one row per concept people ask policies about (never per sentence).

A row's triggers are the ways people say it ("kick in", "sign off", "what do I wear"), its words
the ways policies write it ("overtime applies beyond", "approval", "personal protective
equipment"). Retrieval adds the words (`storage/query.py`), the offline answerer weighs sentences
by them (`providers/offline/citations.py`), and the offline router counts the concepts only a
policy answers as a policy signal (`providers/offline/router.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Intent:
    """One concept: how people say it (regex alternatives, whole words) and how policies do."""

    concept: str
    triggers: str
    words: str
    policy: bool = False
    """Its triggers only ever mean a policy question, never one about the business data ("what do
    I wear", "extra hours"), so the offline router counts them as a policy signal. Concepts whose
    triggers also name data ("drain" is a job type, "summer" a period) leave this False."""

    idioms: str = ""
    """Ways of saying it (also triggers) whose own words the policies use for something else:
    the "off" of "who signs off" is not the "off" of "days off". The answerer leaves them out."""

    def matches(self, question: str) -> bool:
        found = re.search(rf"\b(?:{self.triggers})\b", question)
        return found is not None or bool(
            self.idioms and re.search(rf"\b(?:{self.idioms})\b", question)
        )


INTENTS: Final = (
    # pay and hours
    Intent(
        "overtime threshold",
        r"start(?:s|ing)?\s+(?:to\s+)?count\w*|counts?\s+as|by\s+the\s+(?:day|week)"
        r"|daily|weekly|\d+\s*-?\s*hours?\s+(?:day|shift|week)",
        "overtime applies beyond hours",
        idioms=r"kicks?\s+in|when\s+(?:does|do|will)\s+(?:it|overtime)\s+(?:start|begin)\w*",
    ),
    Intent(
        "working late",
        r"long\s+(?:day|shift)s?",
        "overtime",
        policy=True,
        idioms=r"(?:stay|staying|work|working)\s+late|extra\s+hours",
    ),
    Intent(
        "hours limit",
        r"(?:max|maximum|most)\s+(?:number\s+of\s+)?hours|hours\s+(?:i|we|you)\s+(?:can|may)\s+work"
        r"|how\s+(?:long|many\s+hours)\s+(?:can|may)\s+(?:i|we)\s+work|rest\s+(?:after|between)"
        r"|(?:max|maximum|longest|limit\w*\s+on)\s+(?:\w+\s+)?(?:shifts?|workdays?|work\s+weeks?)"
        r"|shift\s+length|consecutive\s+(?:hours|days|shifts)",
        "limits more than hours rest",
        policy=True,
    ),
    Intent(
        "pay rate",
        r"paid\s+extra|extra\s+pay|pay\s+extra|premium|time\s+and\s+a\s+half|double\s+time"
        r"|how\s+much\s+more|per\s+hour|hourly|(?:paid|pay|make|earn)\s+more|more\s+pay|multiplier"
        r"|(?:is|are|was)\s+(?:it|that|this|they)\s+paid|paid\s+at|(?:it|that)\s+pays?",
        "rate paid regular hourly",
    ),
    Intent("weekend", r"weekends?|saturdays?|sundays?", "saturday sunday weekend"),
    Intent(
        "approval",
        r"permission|approv\w*|authori[sz]\w*|who\s+decides|ok(?:ay)?'?d",
        "approval approved",
        policy=True,
        idioms=r"sign(?:s|ed|ing)?\s+off|ok(?:ay)?\s+(?:my|the|his|her|their|it|before)"
        r"|\w+'s\s+ok(?:ay)?",
    ),
    Intent(
        "limits",
        r"longest|max|maximum|most\s+hours|how\s+long\s+can|cap|too\s+many\s+hours|allowed\s+to",
        "limits more than hours",
    ),
    # time off
    Intent(
        "time off",
        r"vacation|days?\s+off|weeks?\s+off|time\s+off|pto|off\s+work"
        r"|(?:be|been|being|is|are|am)\s+off",
        "pto paid time off vacation",
        policy=True,
    ),
    Intent(
        "notice",
        r"ahead|in\s+advance|advance|notice|how\s+early|beforehand|book\w*",
        "request ahead",
    ),
    Intent(
        "busy season",
        r"january|february|march|april|may|june|july|august|september|october|november"
        r"|december|christmas|thanksgiving|peak|busy|winter"
        r"|at\s+(?:once|the\s+same\s+time)|same\s+day",
        "requests approved season peak off same day",
    ),
    Intent(
        "carry over",
        r"roll\w*\s+over|didn'?t\s+use|unused|left\s*over|carry\w*",
        "carry over unused",
        policy=True,
    ),
    Intent(
        "leave",
        r"family|medical|months\s+off|maternity|paternity|parental|baby|surgery",
        "leave family medical",
        policy=True,
    ),
    Intent("sick", r"sick|ill|doctor", "sick leave", policy=True),
    # safety
    Intent(
        "protective gear",
        r"gear|wear|clothing|clothes|protective|ppe|gloves?|glasses|goggles|boots|helmet|suit",
        "personal protective equipment gloves eye protection clothing",
        policy=True,
    ),
    Intent(
        "accident",
        r"accidents?|hurt|injur\w*|incidents?|near\s+miss|got\s+cut|fell|crash\w*|damage\w*"
        r"|slipped|tripped|twisted|sprain\w*|burn(?:ed|t)|broke|bleeding|hospital|ambulance"
        r"|cut\s+(?:my|myself|his|her|their|a)|shock(?:ed)?|zapped|electrocut\w*",
        "report injury injuries near miss incident reporting",
        policy=True,
    ),
    Intent(
        "reporting",
        r"who\s+(?:do|should|must)\s+i\s+(?:tell|call|notify|report\s+to|let\s+know)"
        r"|tell\s+(?:anyone|someone|somebody)|(?:do|should|must)\s+i\s+report",
        "report reporting supervisor immediately",
        policy=True,
    ),
    Intent(
        "gas hazard",
        r"smell\w*\s+(?:of\s+)?(?:gas|sewer|fumes)|sewer\s+gas|gas\s+smell|hydrogen\s+sulfide|h2s"
        r"|four[- ]gas",
        "gas monitor hydrogen sulfide ppm leave",
        policy=True,
    ),
    Intent(
        "carbon monoxide",
        r"co\s+(?:levels?|readings?|alarms?|detectors?|monitors?|meters?)|carbon|fumes|gas\s+leak|ppm",
        "carbon monoxide co monitor",
        policy=True,
    ),
    Intent(
        "refrigerant",
        r"ac|a/c|air\s+condition\w*|freon|refrigerant\w*|coolant",
        "refrigerant circuit certification",
    ),
    Intent(
        "heights",
        r"ladders?|roofs?|rooftops?|heights?|top\s+of\s+a\s+building|fall",
        "ladders roofs fall protection",
    ),
    Intent(
        "fall protection",
        r"fall\s+(?:protection|arrest)|harness\w*|tie\s+off|tied\s+off|guard\s*rails?",
        "fall protection ladders roofs",
        policy=True,
    ),
    Intent(
        "confined space",
        r"crawl\s*spaces?|vaults?|trench\w*|by\s+myself|alone|confined|basement",
        "confined spaces crawl space second person",
        policy=True,
    ),
    Intent("water heater", r"water\s+heaters?|tanks?|drain\w*|empty", "water heater tank drain"),
    Intent(
        "draining",
        r"drain(?:ing|ed)?\s+(?:a|the|it)|flush(?:ing)?\s+(?:a|the|it)",
        "drain cool",
        policy=True,
    ),
    Intent(
        "de-energise",
        r"breakers?|panels?|circuits?|de-?energi[sz]\w*|lock\w*|shut\s+off\s+power",
        "lockout tagout de energized locked circuit",
    ),
    Intent(
        "lockout",
        r"lock\w*\s*out|tag\w*\s*out|de-?energi[sz]\w*|shut\w*\s+off\s+(?:the\s+)?power"
        r"|(?:before|while)\s+working\s+on\s+(?:a|an|the|any)",
        "lockout tagout de energized locked circuit",
        policy=True,
    ),
    Intent("live work", r"live|energi[sz]ed|hot\s+panel", "energized panels arc flash permit"),
    Intent(
        "live panel",
        r"live\s+(?:panels?|wires?|circuits?|work)|energi[sz]ed\s+\w+|hot\s+panels?|arc\s+flash",
        "energized panels arc flash permit",
        policy=True,
    ),
    Intent("summer", r"summer|heat", "heat index break water"),
    Intent(
        "heat",
        r"heat\s+(?:index|stroke|exhaustion|illness)|hot\s+(?:out|outside|weather|days?)"
        r"|(?:really|too|very|so)\s+hot|temperatures?|dehydrat\w*",
        "heat index break water",
        policy=True,
    ),
    Intent("sewage", r"sewage|sewer|biohazards?|waste|cleanup|clean\s+up", "sewage biohazards"),
    # expenses and tools
    Intent(
        "driving",
        r"driv\w*|cars?|trucks?|vehicles?|miles?|fuel",
        "mileage per mile personal vehicle",
    ),
    Intent(
        "mileage",
        r"mileage|per\s+mile|gas\s+money",
        "mileage per mile personal vehicle",
        policy=True,
    ),
    Intent("spending", r"spent|spend\w*", "receipts required expense"),
    Intent("receipts", r"proof|receipts?", "receipts required expense", policy=True),
    Intent("meals", r"food|eat\w*|lunch|dinner|meals?|per\s+diem", "meals per diem", policy=True),
    Intent(
        "travel",
        r"hotels?|overnight|out\s+of\s+town|lodging|travel\w*|trips?",
        "travel overnight lodging per diem",
        policy=True,
    ),
    Intent(
        "reimbursement",
        r"paid\s+back|pay\s+me\s+back|get\s+back|refund\w*|reimburs\w*",
        "claim submit reimbursed",
        policy=True,
    ),
    Intent("claims", r"claim\w*", "claim submit reimbursed"),  # also warranty claims
    Intent("tools", r"tools?|wrench\w*|meters?|drills?", "tool allowance", policy=True),
    Intent(
        "company card",
        r"credit\s+cards?|own\s+cards?|my\s+card|supply\s+house",
        "personal cards company account parts",
        policy=True,
    ),
    Intent(
        "deadline",
        r"turn\w*\s+in|hand\w*\s+in|deadline|due|how\s+long\s+do\s+i\s+have|submit\w*",
        "submit within days",
    ),
    Intent("tolls", r"tolls?|bridge|parking", "parking tolls", policy=True),
    Intent(
        "license",
        r"licen[cs]e\w*|continuing\s+education|renewals?",
        "license renewals",
        policy=True,
    ),
    # on call
    Intent(
        "response time",
        r"how\s+(?:quick|fast|soon)\w*|show\s+up|get\s+there|respond\w*|arriv\w*",
        "response time arrive within minutes",
    ),
    Intent(
        "emergency call-out",
        r"emergenc\w*|call[- ]?outs?|night\s+calls?|after[- ]hours",
        "on call emergency",
        policy=True,
    ),
    Intent(
        "on-call pay",
        r"(?:pay|paid|money|extra|compensat\w*)\b.{0,30}\bon\W?call"
        r"|on\W?call\b.{0,30}\b(?:pay|paid|money|extra)"
        r"|standby|stand\s+by",
        "stipend",
        policy=True,
    ),
    Intent(
        "on-call schedule",
        r"how\s+often|schedule\w*|posted|published|come\s+out|rotation|who\s+covers|weeknights?",
        "rotation schedule published posts",
    ),
    Intent("on-call kit", r"van|kit|carry|bring", "equipment carry"),
)


ABBREVIATIONS: Final = {
    "ot": "overtime",
    "pto": "paid time off",
    "ppe": "protective equipment",
    # misspellings of the policies' own words, which full-text search cannot match
    "milage": "mileage",
    "overtim": "overtime",
    "overtiem": "overtime",
    "vacaton": "vacation",
    "vaction": "vacation",
    "saftey": "safety",
    "reciept": "receipt",
    "reciepts": "receipts",
    "reimbursment": "reimbursement",
    "alowance": "allowance",
}
"""Shorthand and misspellings people type, spelled out before the intents are read."""


def spelled_out(question: str) -> str:
    """`question` lower-cased, its shorthand and misspellings spelled out."""
    return " ".join(ABBREVIATIONS.get(w.strip("?.,!"), w) for w in question.lower().split())


def policy_topics(question: str) -> list[str]:
    """The concepts of `question` that only a policy question shows (see `Intent.policy`)."""
    text = spelled_out(question)
    return [intent.concept for intent in INTENTS if intent.policy and intent.matches(text)]


def intent_words(question: str) -> str:
    """The policy words of every intent `question` shows ('' if none)."""
    text = spelled_out(question)
    return " ".join(intent.words for intent in INTENTS if intent.matches(text))


def matched(question: str) -> list[Intent]:
    """The intents `question` shows, in table order."""
    text = spelled_out(question)
    return [intent for intent in INTENTS if intent.matches(text)]


def literal_text(question: str) -> str:
    """`question` spelled out, without the words of its intents' idioms ("sign off", "kick in",
    "extra hours") but those the intent's policy words share ("overtime")."""
    text = spelled_out(question)
    for intent in matched(question):
        if not intent.idioms:
            continue
        keep = set(intent.words.split())

        def drop(found: re.Match[str], keep: set[str] = keep) -> str:
            return " ".join(w for w in found[0].split() if w in keep)

        text = re.sub(rf"\b(?:{intent.idioms})\b", drop, text)
    return " ".join(text.split())
