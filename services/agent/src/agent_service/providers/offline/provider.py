"""The offline provider: the default, deterministic "model" that answers the demo data's questions.

It needs no key and no network. Routing is keyword scoring (`offline_router`), SQL comes from a
documented set of question shapes (`offline_question`, `offline_sql`, `offline_plan`), answers are
written from the rows or passages (`offline_answers`, `offline_citations`) and streamed word by
word. It is pure: the same question, memory and rows always give the same tokens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import date

from agent_service.demo.data import DEMO_TODAY
from agent_service.providers.base import (
    AskContext,
    Passage,
    QueryResult,
    RouteChoice,
    SchemaTable,
    SqlAttempt,
    SqlDraft,
    Unanswerable,
)
from agent_service.providers.offline.answers import (
    answer_for_detail,
    answer_for_lookup,
    answer_for_spec,
    answer_generic,
    stream_text,
)
from agent_service.providers.offline.citations import answer_from_passages_text
from agent_service.providers.offline.limits import OfflineLimits
from agent_service.providers.offline.plan import Plan, plan_question, plan_with_attempts, remembered
from agent_service.providers.offline.question import Spec
from agent_service.providers.offline.router import classify_question, general_reply
from agent_service.storage.query import follow_up_context


def _follow_up_of(ask: AskContext) -> str:
    """The previous policy question when `ask` is a short follow-up to it (else '')."""
    if ask.memory.get("last_route") != "rag":
        return ""
    previous = next((t.content for t in reversed(ask.history) if t.role == "user"), "")
    return follow_up_context(ask.question, previous)


def _same_sql(a: object, b: str) -> bool:
    return isinstance(a, str) and " ".join(a.split()) == " ".join(b.split())


class OfflineProvider:
    """`ModelProvider` without a model: keyword routing, shaped SQL, extractive answers."""

    name = "offline"

    def __init__(
        self, pace_s: float = 0.0, today: date = DEMO_TODAY, limits: OfflineLimits | None = None
    ) -> None:
        if not pace_s >= 0:
            raise ValueError("pace_s must be zero or positive")
        self._pace_s = pace_s
        self._today = today
        self._limits = limits or OfflineLimits()

    @property
    def today(self) -> date:
        return self._today

    async def classify(self, ask: AskContext) -> RouteChoice:
        """Pick a route from keywords; follow-ups keep the previous route."""
        return classify_question(ask.question, ask.memory)

    async def draft_sql(
        self,
        ask: AskContext,
        schema: Sequence[SchemaTable],
        attempts: Sequence[SqlAttempt],
    ) -> SqlDraft | Unanswerable:
        """One statement for a known question shape, never one already tried in this run."""
        tables = {table.name for table in schema}
        if schema and not {"technicians", "customers", "jobs"} <= tables:
            return Unanswerable("The business data I know how to query is not available here.")
        tried = [a.sql for a in attempts]
        top_n = self._limits.max_top_n
        plan = plan_with_attempts(ask.question, ask.memory, self._today, tried, top_n)
        if isinstance(plan, Unanswerable):
            return plan
        return SqlDraft(sql=plan.sql, note=plan.note, memory=plan.memory())

    def _plan_for(self, ask: AskContext, sql: str) -> Plan | None:
        """The plan that drafted `sql`: from memory if the graph stored it, else planned again."""
        stored = remembered(ask.memory)
        if _same_sql(stored.get("sql"), sql):
            shape = stored.get("shape")
            spec = Spec.from_json(stored.get("spec"), self._limits.max_top_n)
            if isinstance(shape, str) and (spec is not None or shape != "spec"):
                return Plan(sql, "", shape, spec)
        plan = plan_question(ask.question, ask.memory, self._today, self._limits.max_top_n)
        if isinstance(plan, Plan) and _same_sql(plan.sql, sql):
            return plan
        return None

    def _rows_text(self, ask: AskContext, result: QueryResult) -> str:
        plan = self._plan_for(ask, result.sql)
        listed = self._limits.max_listed
        try:
            if plan is not None and plan.shape == "spec" and plan.spec is not None:
                return answer_for_spec(plan.spec, result, listed)
            if plan is not None and plan.shape == "lookup":
                return answer_for_lookup(result, listed)
            if plan is not None and plan.shape.startswith("detail:"):
                return answer_for_detail(plan.shape.removeprefix("detail:"), result)
        except (IndexError, KeyError, TypeError, ValueError):
            pass  # rows of an unexpected shape still get an answer, just a plainer one
        return answer_generic(result, listed)

    async def answer_from_rows(self, ask: AskContext, result: QueryResult) -> AsyncIterator[str]:
        """Stream an answer built from the rows, which are shown and never obeyed."""
        async for token in stream_text(self._rows_text(ask, result), self._pace_s):
            yield token

    async def answer_from_passages(
        self, ask: AskContext, passages: Sequence[Passage]
    ) -> AsyncIterator[str]:
        """Stream the best-matching passage sentences, cited as [n] of the passages given."""
        text = answer_from_passages_text(
            ask.question, passages, self._limits.max_quoted_sentences, _follow_up_of(ask)
        )
        async for token in stream_text(text, self._pace_s):
            yield token

    async def answer_plainly(self, ask: AskContext, message: str) -> AsyncIterator[str]:
        """Stream `message`; an empty message means "reply to small talk" (the general route)."""
        text = message.strip() or general_reply(ask.question)
        async for token in stream_text(text, self._pace_s):
            yield token

    async def answer_generally(self, ask: AskContext) -> AsyncIterator[str]:
        """Stream a reply on the general route: a greeting back, or what this assistant can do."""
        async for token in stream_text(general_reply(ask.question), self._pace_s):
            yield token
