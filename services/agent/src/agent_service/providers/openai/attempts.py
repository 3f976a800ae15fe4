"""A model step's attempts: retried with backoff on retryable failures, only while nothing of
the step reached the user and another attempt fits the step's deadline (`deadlines.StepBudget`).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import TypeVar

import structlog

from agent_service.providers.base import AskContext
from agent_service.providers.openai.config import OpenAIConfig
from agent_service.providers.openai.deadlines import StepBudget
from agent_service.providers.openai.errors import ModelFailure, classify_failure
from contracts.errors import ErrorCode

log = structlog.get_logger("agent_service.providers.openai.provider")
T = TypeVar("T")


class Attempts:
    """Runs one step's calls under its deadline and the retry policy of `config`."""

    def __init__(self, config: OpenAIConfig) -> None:
        self._config = config
        self._rng = random.Random()

    async def call(self, step: str, ask: AskContext, call: Callable[[], Awaitable[T]]) -> T:
        """A non-streamed call under the step's deadline, retried while another attempt fits."""
        budget = StepBudget.start(step, self._config.timeout_s, ask.deadline)
        loop = asyncio.get_running_loop()
        retry = 0
        while True:
            began = loop.time()
            try:
                async with asyncio.timeout_at(budget.deadline):
                    return await call()
            except Exception as exc:
                if budget.expired():
                    raise timed_out(budget, streamed=False) from None
                failure = failure_of(step, exc)
            delay = self._config.retry.delay(retry, failure, self._rng)
            if (
                not failure.retryable
                or retry >= self._config.retry.max_retries
                or not budget.fits_retry(loop.time() - began, delay)
            ):
                if failure.code == ErrorCode.MODEL_TIMEOUT:
                    raise timed_out(budget, streamed=False)
                raise failure.run_failed()
            await self._backoff(step, retry, failure, delay)
            retry += 1

    async def stream(
        self, step: str, ask: AskContext, open_stream: Callable[[], AsyncGenerator[str, None]]
    ) -> AsyncIterator[str]:
        """Forward `chunk.content` strings; retry only while nothing was forwarded and the first
        text can still come by the step's first-token deadline."""
        budget = StepBudget.start(step, self._config.first_token_timeout_s, ask.deadline)
        loop = asyncio.get_running_loop()
        retry = 0
        while True:
            sent = False
            began = loop.time()
            try:
                # aclosing: however this ends, the response is closed
                async with aclosing(open_stream()) as pieces:
                    # the first-token deadline; disarmed before the first yield, so it never
                    # fires while the consumer holds the text
                    async with asyncio.timeout_at(budget.deadline) as first:
                        async for content in pieces:
                            if not sent:
                                first.reschedule(None)
                                sent = True
                            yield content
            except Exception as exc:
                if not sent and budget.expired():
                    raise timed_out(budget, streamed=True) from None
                failure = failure_of(step, exc)
            else:
                if not sent:
                    # a refusal, a content filter, or a model that stopped at once
                    raise bad_output(step, "the stream ended without any text")
                return
            if sent:
                raise failure.run_failed()
            delay = self._config.retry.delay(retry, failure, self._rng)
            if (
                not failure.retryable
                or retry >= self._config.retry.max_retries
                or not budget.fits_retry(loop.time() - began, delay)
            ):
                if failure.code == ErrorCode.MODEL_TIMEOUT:
                    raise timed_out(budget, streamed=True)
                raise failure.run_failed()
            await self._backoff(step, retry, failure, delay)
            retry += 1

    async def _backoff(self, step: str, retry: int, failure: ModelFailure, delay: float) -> None:
        log.info("model_retry", step=step, retry=retry + 1, code=failure.code, delay_s=delay)
        await asyncio.sleep(delay)


def failure_of(step: str, exc: Exception) -> ModelFailure:
    failure = classify_failure(exc)
    if failure is None:
        raise exc
    log.warning("model_call_failed", step=step, code=failure.code, detail=failure.detail)
    return failure


def timed_out(budget: StepBudget, *, streamed: bool) -> Exception:
    log.warning(
        "model_step_timeout", step=budget.step, limit_s=budget.limit_s, by_run=budget.by_run
    )
    return budget.timed_out(streamed=streamed)


def bad_output(step: str, detail: str) -> Exception:
    log.warning("model_bad_output", step=step, detail=detail[:300])
    return ModelFailure(ErrorCode.MODEL_BAD_RESPONSE, False, detail).run_failed()
