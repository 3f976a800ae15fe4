"""What the assistant says when it must not answer: fixed, polite, and naming the reason.

A provider decides *that* a request is refused and which kind it is; the words come from here, so
a manipulated question cannot change what the refusal says (or make it claim something false).
"""

from __future__ import annotations

from typing import Final, Literal

RefusalKind = Literal[
    "changes_data", "other_company", "forecast", "ignore_instructions", "unsupported"
]

CAN_DO: Final = (
    "I can answer questions about your company's records (technicians, customers, jobs, "
    "revenue, the schedule) and its policies (overtime, on-call, safety, time off, expenses)."
)

REFUSALS: Final[dict[RefusalKind, str]] = {
    "changes_data": (
        "I can't change records: my access to your company's data is read-only, so nothing was "
        "added, changed or deleted. I can look the records up for you, and someone with access "
        "to your dispatch system can make the change."
    ),
    "other_company": (
        "I can only see your own company's records and policies: other companies' data is not "
        "visible to me, whoever the request says it comes from. I can answer the same question "
        "about your company."
    ),
    "forecast": (
        "I can't forecast or predict figures: I only report what your company's records already "
        "show. I can show past figures, for example revenue by month, for you to judge the trend."
    ),
    "ignore_instructions": ("I can't set aside my instructions or show them. " + CAN_DO),
    "unsupported": "I can't answer that from your company's records or policies. " + CAN_DO,
}


def refusal_message(kind: RefusalKind, detail: str = "") -> str:
    """The reply for a refused request; `detail` (one sentence naming the part that cannot be
    answered) is added to an `unsupported` refusal only."""
    if kind == "unsupported" and detail.strip():
        sentence = " ".join(detail.split())[:300].rstrip(".")
        return f"I can't answer that: {sentence}. {CAN_DO}"
    return REFUSALS[kind]
