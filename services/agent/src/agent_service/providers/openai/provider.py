"""The OpenAI-compatible provider: the workflow's steps asked of a real model through `ChatOpenAI`.

- `classify`: one non-streamed structured-output call (route, confidence, reason); never streamed.
  By function calling (the default) it is `routing_call.ToolCallParse`: the same request, posted
  with aiohttp and parsed without LangChain's runnable layers.
- `draft_sql`: one non-streamed call offering the `run_sql` tool over the curated schema; earlier
  failed attempts go back as tool calls with their errors as tool results.
- answers: one streamed call without tools; rows and passages are framed as untrusted data;
  the request is `ChatOpenAI`'s, the chunks are read by `stream.stream_text` (one
  `json.loads` each) and their content forwarded as it comes, citations checked on the way.

Failures map to stable codes (`errors`). A retryable failure is retried (`attempts.Attempts`) only
while nothing of that step reached the user, so a token is never sent twice, and only while
another attempt fits the step's deadline (`deadlines.StepBudget`: the call deadline for
non-streamed steps, the first-token deadline for answers, never past the run's). Between chunks a
stream is bounded by one stall timer per stream (`AGENT_MODEL_STALL_TIMEOUT_S`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from datetime import date
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import structlog
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable
from langchain_openai import ChatOpenAI
from langchain_openai._compat import httpx as sdk_httpx
from opentelemetry.trace import Tracer

from agent_service.providers.base import (
    AskContext,
    Passage,
    QueryResult,
    RouteChoice,
    SchemaTable,
    SqlAttempt,
    SqlDraft,
    Unanswerable,
    UsageMeter,
)
from agent_service.providers.openai.attempts import Attempts, bad_output
from agent_service.providers.openai.citations import CitationFilter
from agent_service.providers.openai.config import OpenAIConfig
from agent_service.providers.openai.format_check import check_structured_output
from agent_service.providers.openai.prompts import (
    SQL_TOOL,
    SQL_TOOL_NAME,
    RouteDecision,
    classify_messages,
    general_messages,
    history_messages,
    last_result_block,
    passages_messages,
    rows_messages,
    sql_messages,
)
from agent_service.providers.openai.routing_call import ToolCallParse
from agent_service.providers.openai.stream import new_session, stream_text
from agent_service.providers.openai.tracing import TracedTransport, traced_call, traced_stream
from agent_service.providers.refusals import refusal_message
from contracts.tracing import NO_TRACER

log = structlog.get_logger("agent_service.providers.openai.provider")

NO_PASSAGES = (
    "None of your company's policy documents I can search covers that. Try asking about "
    "overtime, on-call pay, safety and PPE, time off, or expenses — or check with your manager "
    "or HR."
)
NO_QUERY = (
    "I couldn't look that up: the model did not write a query for it. Try asking about your "
    "technicians, customers or jobs by name, status or date."
)
"""Said when the SQL step's model replies without calling `run_sql`: its text is not streamed,
since a weak model's words there read as an answer ("The tool returns the number of ...")."""
NO_ROWS = "Nothing in your data matches that: the query returned no rows."


class OpenAIProvider:
    """`ModelProvider` over any OpenAI-compatible Chat Completions endpoint."""

    name = "openai"

    def __init__(self, config: OpenAIConfig, *, tracer: Tracer = NO_TRACER) -> None:
        self._config = config
        self._attempts = Attempts(config)
        self._tracer = tracer
        self._host = urlsplit(config.base_url).hostname or ""
        # One connection pool for every step, owned here and closed by `aclose` (the SDK's own
        # httpx: httpx2 under openai>=3). One TLS context for both clients: loading the CA
        # bundle is the slow part of building a client, and ChatOpenAI builds a sync client too.
        tls = sdk_httpx.create_ssl_context()
        pool = sdk_httpx.AsyncHTTPTransport(
            verify=tls,
            limits=sdk_httpx.Limits(max_connections=1000, max_keepalive_connections=100),
        )
        # Each model call is a span of the step that made it, its traceparent sent to the model.
        self._http = sdk_httpx.AsyncClient(transport=TracedTransport(pool, tracer))
        self._http_sync = sdk_httpx.Client(verify=tls)  # never used for calls; built once
        self._aio: aiohttp.ClientSession | None = None
        """The routing calls' and answer streams' pool (aiohttp, `stream.py`): made in the loop
        at the first call."""
        call_timeout = sdk_httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s)
        stream_timeout = sdk_httpx.Timeout(config.stall_timeout_s, connect=config.connect_timeout_s)
        classifier = self._classifier_chat = self._chat(config.classifier_model, call_timeout)
        self._route_call = (
            ToolCallParse(classifier, RouteDecision)
            if config.structured_output == "function_calling"
            else None
        )
        self._classifier: Runnable[Any, Any] = classifier.with_structured_output(
            RouteDecision, method=config.structured_output, include_raw=True
        )
        self._sql = self._chat(config.sql_model, call_timeout).bind_tools(
            [SQL_TOOL], tool_choice="auto"
        )
        self._answer = self._chat(
            config.answer_model,
            stream_timeout,
            max_tokens=config.answer_max_tokens,
            stream_usage=config.stream_usage,
        )

    def _chat(self, model: str, timeout: Any, **kwargs: Any) -> ChatOpenAI:
        return ChatOpenAI(
            model=model,
            base_url=self._config.base_url,
            api_key=self._config.api_key,
            temperature=self._config.temperature,
            timeout=timeout,
            max_retries=0,  # retries are ours: bounded, mapped, never after a token
            http_async_client=self._http,
            http_client=self._http_sync,
            use_responses_api=False,
            # The httpx read timeout already bounds the silence between chunks at no per-chunk
            # cost; ChatOpenAI's own chunk timer adds an asyncio.wait_for task per token.
            stream_chunk_timeout=None,
            **kwargs,
        )

    async def check_structured_output(self) -> None:
        """Refuse to start against a server that rejects `model_structured_output`'s format."""
        await check_structured_output(self._classifier_chat, self._config)

    async def aclose(self) -> None:
        """Close the connection pool (at the app's shutdown)."""
        await self._http.aclose()
        self._http_sync.close()
        if self._aio is not None:
            await self._aio.close()

    def _answer_stream(
        self, ask: AskContext, messages: list[BaseMessage]
    ) -> Callable[[], AsyncGenerator[str, None]]:
        # Not `ChatOpenAI.astream`: its per-chunk objects cost ~300 µs a token (stream.py)
        def read(headers: dict[str, str] | None = None) -> AsyncGenerator[str, None]:
            cfg = self._config
            return stream_text(
                self._answer,
                messages,
                ask.usage,
                include_usage=cfg.stream_usage,
                session=self._session(),
                stall_timeout_s=cfg.stall_timeout_s,
                extra_headers=headers,
            )

        def open_stream() -> AsyncGenerator[str, None]:
            if self._tracer is NO_TRACER:
                return read()  # tracing off: no span, no extra generator on the token path
            return traced_stream(self._tracer, self._host, read)

        return open_stream

    def _session(self) -> aiohttp.ClientSession:
        if self._aio is None:  # opened in the loop, at the first call
            self._aio = new_session(1000, self._config.connect_timeout_s, self._config.base_url)
        return self._aio

    def _history(self, ask: AskContext) -> list[BaseMessage]:
        return history_messages(ask.history, self._config.history_tokens)

    async def classify(self, ask: AskContext) -> RouteChoice:
        """One structured-output call; the reply is parsed, never streamed."""
        messages = classify_messages(ask.question, self._history(ask))
        parsed: object
        if self._route_call is not None:
            lean, session = self._route_call, self._session()

            def route_call() -> Awaitable[RouteDecision | str]:
                if self._tracer is NO_TRACER:
                    return lean.ainvoke(messages, ask.usage, session)
                return traced_call(
                    self._tracer,
                    self._host,
                    lambda headers: lean.ainvoke(messages, ask.usage, session, headers),
                )

            parsed = await self._attempts.call("classify", ask, route_call)
            error: object = parsed
        else:
            out = await self._attempts.call(
                "classify", ask, lambda: self._classifier.ainvoke(messages)
            )
            _meter(ask.usage, out.get("raw"))
            parsed, error = out.get("parsed"), out.get("parsing_error")
        if not isinstance(parsed, RouteDecision):
            # an unusable reply is not the user's fault: take the workflow's default route
            log.warning("route_unusable", detail=f"no valid route decision: {error!r}"[:300])
            return RouteChoice(
                route="general", confidence=0.0, reason="unusable routing reply", uncertain=True
            )
        kind = parsed.refusal_kind()
        if kind is not None:
            # a fixed reply naming the reason; the contract's route for it is `general`
            return RouteChoice(
                route="general",
                confidence=parsed.confidence,
                reason=parsed.reason,
                refusal=refusal_message(kind, parsed.reason),
            )
        route = parsed.route if parsed.route != "refuse" else "general"
        uncertain = parsed.confidence < self._config.route_min_confidence
        return RouteChoice(
            route=route, confidence=parsed.confidence, reason=parsed.reason, uncertain=uncertain
        )

    async def draft_sql(
        self,
        ask: AskContext,
        schema: Sequence[SchemaTable],
        attempts: Sequence[SqlAttempt],
    ) -> SqlDraft | Unanswerable:
        """Offer `run_sql`; a tool call is the draft, a plain reply means it cannot be answered."""
        cfg = self._config
        previous = last_result_block(ask.memory, cfg.prompt_rows, cfg.prompt_chars // 4)
        today = (cfg.today or date.today()).isoformat()
        messages = sql_messages(ask.question, self._history(ask), schema, attempts, previous, today)
        reply = await self._attempts.call("draft_sql", ask, lambda: self._sql.ainvoke(messages))
        if not isinstance(reply, AIMessage):
            raise bad_output("draft_sql", f"unexpected reply type {type(reply).__name__}")
        _meter(ask.usage, reply)
        for call in reply.tool_calls:
            if call["name"] != SQL_TOOL_NAME:
                continue
            sql, note = call["args"].get("sql"), call["args"].get("note", "")
            if not isinstance(sql, str) or not sql.strip():
                raise bad_output("draft_sql", "run_sql was called without a query")
            return SqlDraft(sql=sql.strip(), note=note.strip() if isinstance(note, str) else "")
        if reply.invalid_tool_calls:
            raise bad_output("draft_sql", f"unparsable tool call: {reply.invalid_tool_calls[0]!r}")
        # No tool call: whatever the text says, no data was read. It goes to the log, and the
        # user is told plainly (a weak model's text here reads like an answer it never had).
        log.info("sql_not_written", reply=reply.text.strip()[:300])
        return Unanswerable(NO_QUERY, reason="no_query")

    def answer_from_rows(self, ask: AskContext, result: QueryResult) -> AsyncIterator[str]:
        """Stream an answer from the rows, which reach the model as framed, untrusted data."""
        cfg = self._config
        if not result.rows:
            return _words(NO_ROWS)  # nothing to answer from: said, not improvised
        messages = rows_messages(
            ask.question, self._history(ask), result, cfg.prompt_rows, cfg.prompt_chars
        )
        return self._attempts.stream("answer_from_rows", ask, self._answer_stream(ask, messages))

    async def answer_from_passages(
        self, ask: AskContext, passages: Sequence[Passage]
    ) -> AsyncIterator[str]:
        """Stream a cited answer; citations of passages not given are removed on the way."""
        if not passages:
            async for piece in _words(NO_PASSAGES):
                yield piece
            return
        messages = passages_messages(
            ask.question, self._history(ask), passages, self._config.prompt_chars
        )
        citations = CitationFilter(len(passages))
        async for piece in self._attempts.stream(
            "answer_from_passages", ask, self._answer_stream(ask, messages)
        ):
            text = citations.feed(piece)
            if text:
                yield text
        tail = citations.flush()
        if tail:
            yield tail
        if citations.removed:
            log.warning("citations_removed", passages=len(passages), removed=citations.removed)

    async def answer_plainly(self, ask: AskContext, message: str) -> AsyncIterator[str]:  # noqa: ARG002
        """Stream `message` as it is: no model call, so a failure report cannot fail or drift."""
        async for piece in _words(message):
            yield piece

    def answer_generally(self, ask: AskContext) -> AsyncIterator[str]:
        """Stream a reply that needs no data (greetings, what the assistant can do)."""
        messages = general_messages(ask.question, self._history(ask))
        return self._attempts.stream("answer_generally", ask, self._answer_stream(ask, messages))


def _meter(usage: UsageMeter, message: Any) -> None:
    meta = getattr(message, "usage_metadata", None)
    if meta:
        usage.add(meta.get("input_tokens", 0), meta.get("output_tokens", 0))


_WORD = re.compile(r"\s*\S+|\s+$")


async def _words(text: str) -> AsyncIterator[str]:
    """`text` in word-sized pieces, so a fixed message streams like a model's."""
    for match in _WORD.finditer(text):
        yield match.group()
