"""From a question to a full-text query, the same for both document stores.

People ask "when does overtime kick in" and "what gear do I need"; policies say "hours beyond 40
are overtime" and "personal protective equipment". `expand_query` adds the policies' words for the
intent a question shows, from a small table with one row per concept (never per sentence): a row's
triggers are the ways people say it, its words the ways policies write it. `fts_query` then turns
the question and those words into a safe OR-query of quoted terms for FTS5 and for
`websearch_to_tsquery`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

MAX_QUERY_TERMS: Final = 32
_TERM_RE: Final = re.compile(r"\w+", re.UNICODE)
# Words that carry no meaning for retrieval, plus FTS5's own operators (which we never pass on).
_STOP_WORDS: Final = frozenset(
    {
        "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "how",
        "i", "if", "in", "is", "it", "me", "my", "near", "not", "of", "on", "or", "our", "show",
        "tell", "that", "the", "their", "them", "there", "this", "to", "us", "we", "what", "when",
        "where", "which", "who", "why", "will", "with", "you", "your", "about", "any", "please",
        "give", "list", "get", "much", "many",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Intent:
    """One concept: how people say it (regex alternatives, whole words) and how policies do."""

    concept: str
    triggers: str
    words: str

    def matches(self, question: str) -> bool:
        return re.search(rf"\b(?:{self.triggers})\b", question) is not None


INTENTS: Final = (
    # pay and hours
    Intent(
        "overtime threshold",
        r"kicks?\s+in|start(?:s|ing)?\s+(?:to\s+)?count\w*|counts?\s+as|by\s+the\s+(?:day|week)"
        r"|daily|weekly|\d+\s*-?\s*hours?\s+(?:day|shift|week)",
        "overtime applies beyond hours",
    ),
    Intent(
        "working late",
        r"(?:stay|staying|work|working)\s+late|extra\s+hours|long\s+(?:day|shift)s?",
        "overtime",
    ),
    Intent(
        "pay rate",
        r"paid\s+extra|extra\s+pay|pay\s+extra|premium|time\s+and\s+a\s+half|double\s+time"
        r"|how\s+much\s+more|per\s+hour|hourly|(?:paid|pay|make|earn)\s+more|more\s+pay|multiplier",
        "rate paid regular hourly",
    ),
    Intent("weekend", r"weekends?|saturdays?|sundays?", "saturday sunday weekend"),
    Intent(
        "approval",
        r"sign\s+off|permission|approv\w*|okay|ok|authori[sz]\w*|who\s+decides",
        "approval approved",
    ),
    Intent(
        "limits",
        r"longest|max|maximum|most\s+hours|how\s+long\s+can|cap|too\s+many\s+hours|allowed\s+to",
        "limits more than hours",
    ),
    # time off
    Intent(
        "time off",
        r"vacation|days?\s+off|weeks?\s+off|time\s+off|pto",
        "pto paid time off vacation",
    ),
    Intent(
        "notice",
        r"ahead|in\s+advance|advance|notice|how\s+early|beforehand|book\w*",
        "request ahead",
    ),
    Intent(
        "busy season",
        r"january|february|march|april|may|june|july|august|september|october|november"
        r"|december|christmas|thanksgiving|peak|busy",
        "requests approved season peak off same day",
    ),
    Intent(
        "carry over",
        r"roll\w*\s+over|didn'?t\s+use|unused|left\s*over|carry\w*",
        "carry over unused",
    ),
    Intent(
        "leave",
        r"family|medical|months\s+off|maternity|paternity|parental|baby|surgery",
        "leave family medical",
    ),
    Intent("sick", r"sick|ill|doctor", "sick leave"),
    # safety
    Intent(
        "protective gear",
        r"gear|wear|clothing|clothes|protective|ppe|gloves?|glasses|goggles|boots|helmet|suit",
        "personal protective equipment gloves eye protection clothing",
    ),
    Intent(
        "accident",
        r"accidents?|hurt|injur\w*|incidents?|near\s+miss|got\s+cut|fell|crash\w*|damage\w*"
        r"|slipped|tripped|twisted|sprain\w*|burn(?:ed|t)|broke|bleeding|hospital|ambulance",
        "report injury injuries near miss incident reporting",
    ),
    Intent("carbon monoxide", r"co|carbon|fumes|gas\s+leak", "carbon monoxide co monitor"),
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
        "confined space",
        r"crawl\s*spaces?|vaults?|trench\w*|by\s+myself|alone|confined|basement",
        "confined spaces crawl space second person",
    ),
    Intent("water heater", r"water\s+heaters?|tanks?|drain\w*|empty", "water heater tank drain"),
    Intent(
        "de-energise",
        r"breakers?|panels?|circuits?|de-?energi[sz]\w*|lock\w*|shut\s+off\s+power",
        "lockout tagout de energized locked circuit",
    ),
    Intent("live work", r"live|energi[sz]ed|hot\s+panel", "energized panels arc flash permit"),
    Intent(
        "heat", r"summer|heat|hot\s+(?:weather|days?|outside)|temperature", "heat index break water"
    ),
    Intent("sewage", r"sewage|sewer|biohazards?|waste|cleanup|clean\s+up", "sewage biohazards"),
    # expenses and tools
    Intent(
        "mileage",
        r"driv\w*|cars?|trucks?|vehicles?|miles?|mileage|gas\s+money|fuel",
        "mileage per mile personal vehicle",
    ),
    Intent("receipts", r"proof|receipts?|spent|spend\w*", "receipts required expense"),
    Intent("meals", r"food|eat\w*|lunch|dinner|meals?|per\s+diem", "meals per diem"),
    Intent(
        "travel",
        r"hotels?|overnight|out\s+of\s+town|lodging|travel\w*|trips?",
        "travel overnight lodging per diem",
    ),
    Intent(
        "reimbursement",
        r"paid\s+back|pay\s+me\s+back|get\s+back|refund\w*|claim\w*",
        "claim submit reimbursed",
    ),
    Intent("tools", r"tools?|wrench\w*|meters?|drills?", "tool allowance"),
    Intent(
        "company card",
        r"credit\s+cards?|own\s+cards?|my\s+card|supply\s+house",
        "personal cards company account parts",
    ),
    Intent(
        "deadline",
        r"turn\w*\s+in|hand\w*\s+in|deadline|due|how\s+long\s+do\s+i\s+have|submit\w*",
        "submit within days",
    ),
    Intent("tolls", r"tolls?|bridge|parking", "parking tolls"),
    Intent("license", r"licen[cs]e\w*|continuing\s+education|renewals?", "license renewals"),
    # on call
    Intent(
        "response time",
        r"how\s+(?:quick|fast|soon)\w*|show\s+up|get\s+there|respond\w*|arriv\w*",
        "response time arrive within minutes",
    ),
    Intent(
        "on-call pay",
        r"(?:pay|paid|money|extra|compensat\w*)\b.{0,30}\bon\W?call"
        r"|on\W?call\b.{0,30}\b(?:pay|paid|money|extra)"
        r"|standby|stand\s+by",
        "stipend",
    ),
    Intent(
        "on-call schedule",
        r"how\s+often|schedule\w*|posted|published|come\s+out|rotation|who\s+covers|weeknights?",
        "rotation schedule published posts",
    ),
    Intent("on-call kit", r"van|kit|carry|bring", "equipment carry"),
)


ABBREVIATIONS: Final = {"ot": "overtime", "pto": "paid time off", "ppe": "protective equipment"}
"""Shorthand people type, spelled out before the intents are read."""


def spelled_out(question: str) -> str:
    """`question` lower-cased, its shorthand spelled out."""
    return " ".join(ABBREVIATIONS.get(w.strip("?.,!"), w) for w in question.lower().split())


def intent_words(question: str) -> str:
    """The policy words of every intent `question` shows ('' if none)."""
    text = spelled_out(question)
    return " ".join(intent.words for intent in INTENTS if intent.matches(text))


def expand_query(question: str) -> str:
    """`question` (shorthand spelled out) followed by the policy words of its intents."""
    return f"{spelled_out(question)} {intent_words(question)}".strip()


def fts_query(text: str) -> str:
    """Turn free text into a safe FTS5 query: quoted content words joined by OR ('' if none)."""
    terms: list[str] = []
    for word in _TERM_RE.findall(text.lower()):
        if word in _STOP_WORDS or word in terms or word == "_":
            continue
        terms.append(word)
        if len(terms) == MAX_QUERY_TERMS:
            break
    # \\w+ never contains a double quote, so quoting makes every term a plain string token.
    return " OR ".join(f'"{term}"' for term in terms)


def search_query(question: str) -> str:
    """The full-text query both stores run for `question`: its words, then its intents' words."""
    return fts_query(expand_query(question))
