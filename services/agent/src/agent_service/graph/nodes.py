"""The workflow's nodes: small async functions that return partial state.

Nodes stream through `RunContext.emit` (`runs/events.py`): a `Token` per piece of text, contract
event models for route and tool events, `RunMeta` for what `complete.stats` reports; the runner
sends what they emitted as soon as it wakes (`runs/inline.py`). The tenant always comes from the
run context, never from state.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

import structlog
from langgraph.runtime import Runtime
from langgraph.types import Command

from agent_service.graph.fallback import fallback_route
from agent_service.graph.result_table import result_table
from agent_service.graph.state import (
    AgentState,
    Memory,
    PassageRecord,
    ResultRecord,
    RunContext,
    SourceRecord,
    TurnRecord,
    utc_now,
)
from agent_service.providers.base import (
    AskContext,
    Passage,
    QueryResult,
    SqlAttempt,
    Turn,
    Unanswerable,
)
from agent_service.runs.events import RunMeta, Token
from agent_service.sql.guard import SqlError
from agent_service.storage.query import follow_up_context
from contracts.agent_api import (
    ResultTable,
    RouteDecisionEvent,
    Source,
    ToolEndEvent,
    ToolStartEvent,
)

LAST_RESULT_ROWS = 20
"""Rows of the last result kept in memory for follow-ups ("tell me about the first one")."""


def _ask(state: AgentState, ctx: RunContext) -> AskContext:
    turns = state.get("turns", [])
    # the current question is the last user turn once classify has run; history excludes it
    previous = turns[:-1] if turns and turns[-1].get("role") == "user" else turns
    window = previous[-ctx.history_turns :] if ctx.history_turns else []
    return AskContext(
        question=state["question"],
        history=tuple(Turn(role=t["role"], content=t["content"]) for t in window),
        memory=state.get("memory") or {},
        usage=ctx.usage,
        deadline=ctx.deadline,
    )


async def classify(state: AgentState, runtime: Runtime[RunContext]) -> Command[Next]:
    """Route the question; emits `route_decision` and never streams tokens. Goes on to the
    step `route_after_classify` names (a `Command`, not a conditional edge: LangGraph runs a
    plain-function edge in a thread of the default executor, with a callback run around it,
    about 0.3-0.7 ms of CPU per run)."""
    ctx = runtime.context
    choice = await ctx.provider.classify(_ask(state, ctx))
    write = ctx.emit
    route, reason = choice.route, choice.reason
    if choice.uncertain and not choice.refusal:
        route, reason = fallback_route(state["question"], ctx.schema)
    write(RouteDecisionEvent(route=route, confidence=round(choice.confidence, 3), reason=reason))
    if choice.refusal:
        write(RunMeta(unanswered="refused"))
    # the question is in `turns` already: the run records it first (Runner.record_question)
    update: AgentState = {
        "route": route,
        "result": None,
        "passages": [],
        "notice": choice.refusal or None,
        "tools": [],
    }
    return Command(update=update, goto=route_after_classify(update))


Next = Literal["sql_agent", "rag_agent", "finalize"]
"""Where a run goes after classify."""


def route_after_classify(state: AgentState) -> Next:
    if state.get("notice"):
        return "finalize"  # refused: nothing is read
    match state.get("route"):
        case "sql":
            return "sql_agent"
        case "rag":
            return "rag_agent"
        case _:
            return "finalize"


_log = structlog.get_logger("agent_service.graph")
_UNENCODABLE_RE = re.compile(r"[\x00\ud800-\udfff]")
_UNENCODABLE_REASON = (
    "the query contains NUL or unpaired surrogate characters (shown as \ufffd); write plain text"
)


def _encodable(text: str) -> str:
    """`text` with what UTF-8 (or PostgreSQL text) cannot carry replaced by U+FFFD."""
    return _UNENCODABLE_RE.sub("\ufffd", text)


async def sql_agent(state: AgentState, runtime: Runtime[RunContext]) -> AgentState:
    """Draft a query, run it through the tenant guard; feed failures back, at most N attempts."""
    ctx = runtime.context
    write = ctx.emit
    ask = _ask(state, ctx)
    attempts: list[SqlAttempt] = []
    tools: list[dict[str, Any]] = []  # every attempt's tool_end, for the history
    memory: Memory = {**state.get("memory", {})}
    while len(attempts) < ctx.max_sql_attempts:
        draft = await ctx.provider.draft_sql(ask, ctx.schema, attempts)
        if isinstance(draft, Unanswerable):
            write(RunMeta(unanswered=draft.reason))
            return {"notice": draft.message, "tools": tools}
        note, query = _encodable(draft.note), _encodable(draft.sql)
        if note:
            write(Token("sql_agent", note))
        call_id = f"sql-{uuid.uuid4().hex[:12]}"
        write(ToolStartEvent(tool="sql_query", call_id=call_id, input=query))
        started = time.perf_counter()
        if query != draft.sql:
            # The model's mistake (a lone surrogate or NUL in its arguments): refused like any
            # query, so it may retry; one log line, never a crashed run.
            _log.info("sql_draft_unencodable", tenant=ctx.tenant.company_id)
            write(
                _tool_end("sql_query", call_id, "error", _UNENCODABLE_REASON, started, query, tools)
            )
            attempts.append(SqlAttempt(sql=query, error=_UNENCODABLE_REASON))
            continue
        try:
            result = await ctx.sql.run(ctx.tenant.company_id, draft.sql)
        except SqlError as exc:
            write(_tool_end("sql_query", call_id, "error", str(exc), started, draft.sql, tools))
            attempts.append(SqlAttempt(sql=draft.sql, error=str(exc)))
            continue
        summary = f"{result.row_count} row{'s' if result.row_count != 1 else ''}"
        table = result_table(result, ctx.table_max_rows, ctx.table_max_bytes)
        write(
            _tool_end(
                "sql_query",
                call_id,
                "ok",
                summary + (" (truncated)" if result.truncated else ""),
                started,
                draft.sql,
                tools,
                table,
            )
        )
        write(RunMeta(sql=result.sql, row_count=result.row_count, truncated=result.truncated))
        memory["provider"] = {**memory.get("provider", {}), **draft.memory}
        memory["last_result"] = {
            "sql": result.sql,
            "columns": list(result.columns),
            "rows": [list(row) for row in result.rows[:LAST_RESULT_ROWS]],
        }
        return {"result": _result_state(result), "memory": memory, "tools": tools}
    last_error = attempts[-1].error if attempts else "no query was produced"
    write(RunMeta(unanswered="queries_failed"))
    return {
        "notice": (
            f"I couldn't answer that from the data: my queries failed {len(attempts)} times "
            f"(last error: {last_error}). Try rephrasing the question."
        ),
        "tools": tools,
    }


async def rag_agent(state: AgentState, runtime: Runtime[RunContext]) -> AgentState:
    """Retrieve the caller's own policy passages for the question."""
    ctx = runtime.context
    write = ctx.emit
    call_id = f"docs-{uuid.uuid4().hex[:12]}"
    # "how much is it paid?" after an overtime question is searched with that question
    context = follow_up_context(state["question"], _previous_policy_question(state))
    query = f"{state['question']} {context}".strip()
    write(ToolStartEvent(tool="document_search", call_id=call_id, input=query))
    started = time.perf_counter()
    passages = await ctx.documents.search(ctx.tenant.company_id, query, ctx.top_k)
    titles = {p.title for p in passages}
    tools: list[dict[str, Any]] = []
    write(
        _tool_end(
            "document_search",
            call_id,
            "ok",
            f"{_count(len(passages), 'passage')} from {_count(len(titles), 'document')}",
            started,
            query,
            tools,
        )
    )
    write(
        RunMeta(
            sources=tuple(Source(**_source(p)) for p in passages),
            unanswered=None if passages else "no_passages",
        )
    )
    return {"passages": [_passage_state(p) for p in passages], "tools": tools}


def _previous_policy_question(state: AgentState) -> str:
    """The previous user question when the previous turn was answered from the documents."""
    if (state.get("memory") or {}).get("last_route") != "rag":
        return ""
    turns = state.get("turns", [])
    earlier = turns[:-1] if turns and turns[-1].get("role") == "user" else turns
    return next((t["content"] for t in reversed(earlier) if t.get("role") == "user"), "")


async def finalize(state: AgentState, runtime: Runtime[RunContext]) -> AgentState:
    """Stream the answer on the `final` channel and record the assistant turn."""
    ctx = runtime.context
    write = ctx.emit
    ask = _ask(state, ctx)
    route = state.get("route", "general")
    parts: list[str] = []
    async for piece in _answer(state, ctx, ask):
        write(Token("final", piece))
        parts.append(piece)
    turn: TurnRecord = {
        "role": "assistant",
        "content": "".join(parts),
        "route": route,
        "at": utc_now(),
    }
    if state.get("tools"):
        turn["tools"] = state["tools"]
    result = state.get("result")
    if result and not state.get("notice"):
        turn["sql"] = result["sql"]
        turn["row_count"] = len(result["rows"])
    passages = state.get("passages") or []
    if passages and route == "rag":
        turn["sources"] = [_source(Passage(**p)) for p in passages]
    memory: Memory = {**state.get("memory", {}), "last_route": route}
    return {"turns": [turn], "memory": memory}


def _answer(state: AgentState, ctx: RunContext, ask: AskContext) -> AsyncIterator[str]:
    notice = state.get("notice")
    if notice:
        return ctx.provider.answer_plainly(ask, notice)
    route = state.get("route")
    result = state.get("result")
    if route == "sql" and result is not None:
        return ctx.provider.answer_from_rows(ask, _query_result(result))
    if route == "rag":
        passages = [Passage(**p) for p in state.get("passages") or []]
        return ctx.provider.answer_from_passages(ask, passages)
    return ctx.provider.answer_generally(ask)


def _tool_end(
    tool: str,
    call_id: str,
    status: Literal["ok", "error"],
    summary: str,
    started: float,
    tool_input: str,
    record: list[dict[str, Any]],
    table: dict[str, Any] | None = None,
) -> ToolEndEvent:
    """The `tool_end` event to write; also appended to `record` (the turn's tool calls)."""
    event = ToolEndEvent(
        tool=tool,
        call_id=call_id,
        status=status,
        summary=summary[:300],
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
        input=tool_input,
        table=ResultTable(**table) if table is not None else None,
    )
    record.append(event.model_dump(exclude_none=True))
    return event


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _source(p: Passage) -> SourceRecord:
    return {
        "doc_id": p.doc_id,
        "title": p.title,
        "chunk_id": p.chunk_id,
        "snippet": p.text[:240],
        "score": round(p.score, 4),
    }


def _passage_state(p: Passage) -> PassageRecord:
    return {
        "doc_id": p.doc_id,
        "title": p.title,
        "chunk_id": p.chunk_id,
        "text": p.text,
        "score": p.score,
    }


def _result_state(result: QueryResult) -> ResultRecord:
    return {
        "sql": result.sql,
        "columns": list(result.columns),
        "rows": [list(row) for row in result.rows],
        "truncated": result.truncated,
    }


def _query_result(result: ResultRecord) -> QueryResult:
    return QueryResult(
        sql=result["sql"],
        columns=tuple(result["columns"]),
        rows=tuple(tuple(row) for row in result["rows"]),
        truncated=bool(result["truncated"]),
    )
