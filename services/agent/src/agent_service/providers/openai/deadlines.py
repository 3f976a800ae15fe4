"""A model step's time budget: one deadline per step, its retries included, never past the run's.

- `classify` and each SQL draft (non-streamed): `AGENT_MODEL_TIMEOUT_S`;
- a streamed answer, until its first text: `AGENT_MODEL_FIRST_TOKEN_TIMEOUT_S`.

A failed attempt is retried only while another as long as it, after its backoff, still ends in
time (and, for an answer, only before any text reached the user).

A step's deadline is the nearer of its own limit and the run's (`AGENT_RUN_TIMEOUT_S`), so a
step that runs out ends the run with a `MODEL_TIMEOUT` that names the step, at once, instead of
being tried again to end later with the same code.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

from agent_service.errors import RunFailed
from contracts.errors import ErrorCode

STEP_LABELS: Final = {
    "classify": "routing",
    "draft_sql": "SQL",
    "answer_from_rows": "answer",
    "answer_from_passages": "answer",
    "answer_generally": "answer",
}
RUN_MARGIN_S: Final = 0.1
"""A step clamped by the run's deadline ends this much before it, so the step's own error (which
names it) is the one the user gets, not the run's."""


@dataclass(frozen=True, slots=True)
class StepBudget:
    """When one step must be done by (`deadline`, in the event loop's clock)."""

    step: str
    limit_s: float
    deadline: float
    by_run: bool
    """The run's deadline came first: the step had less than its own limit."""

    @classmethod
    def start(cls, step: str, limit_s: float, run_deadline: float | None) -> StepBudget:
        own = asyncio.get_running_loop().time() + limit_s
        if run_deadline is not None and run_deadline - RUN_MARGIN_S < own:
            return cls(step, limit_s, run_deadline - RUN_MARGIN_S, True)
        return cls(step, limit_s, own, False)

    def expired(self) -> bool:
        return asyncio.get_running_loop().time() >= self.deadline

    def fits_retry(self, attempt_s: float, delay_s: float) -> bool:
        """Whether another attempt as long as the last, after `delay_s`, ends by the deadline."""
        return asyncio.get_running_loop().time() + delay_s + attempt_s < self.deadline

    def timed_out(self, *, streamed: bool) -> RunFailed:
        """The run's end when this step ran out: MODEL_TIMEOUT, saying which step and limit."""
        label = STEP_LABELS.get(self.step, self.step)
        verb = "did not start answering" if streamed else "did not answer"
        within = "the reply's time limit" if self.by_run else f"{self.limit_s:g} s"
        return RunFailed(
            ErrorCode.MODEL_TIMEOUT, f"the model {verb} within {within} ({label} step); try again"
        )
