"""The OpenAI-compatible provider's configuration, resolved from `AgentSettings`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from pydantic import SecretStr

from agent_service.providers.openai.errors import RetryPolicy
from agent_service.settings import AgentSettings


@dataclass(frozen=True, slots=True)
class OpenAIConfig:
    """Everything the provider needs, resolved from settings (see `AgentSettings`)."""

    base_url: str
    api_key: SecretStr
    classifier_model: str
    sql_model: str
    answer_model: str
    temperature: float = 0.0
    answer_max_tokens: int = 1024
    structured_output: Literal["function_calling", "json_schema", "json_mode"] = "function_calling"
    stream_usage: bool = True
    connect_timeout_s: float = 5.0
    timeout_s: float = 30.0
    stall_timeout_s: float = 20.0
    first_token_timeout_s: float = 10.0
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(2, 0.5, 8.0))
    history_tokens: int = 2000
    prompt_rows: int = 50
    prompt_chars: int = 24_000
    today: date | None = None
    """The date SQL is written against; None means the real date at each call."""


def openai_config(settings: AgentSettings) -> OpenAIConfig:
    """The OpenAI-compatible provider's configuration from `AGENT_OPENAI_*` / `AGENT_MODEL_*`."""
    key = settings.openai_api_key
    return OpenAIConfig(
        base_url=settings.openai_base_url,
        # local servers (vLLM, Ollama, llama.cpp) ignore the key, but the SDK requires one
        api_key=key if key is not None else SecretStr("EMPTY"),
        classifier_model=settings.model_classifier or settings.model_name,
        sql_model=settings.model_sql or settings.model_name,
        answer_model=settings.model_answer or settings.model_name,
        temperature=settings.model_temperature,
        answer_max_tokens=settings.model_answer_max_tokens,
        structured_output=settings.model_structured_output,
        stream_usage=settings.model_stream_usage,
        connect_timeout_s=settings.model_connect_timeout_s,
        timeout_s=settings.model_timeout_s,
        stall_timeout_s=settings.model_stall_timeout_s,
        first_token_timeout_s=settings.model_first_token_timeout_s,
        retry=RetryPolicy(
            max_retries=settings.model_max_retries,
            base_s=settings.model_retry_base_s,
            max_s=settings.model_retry_max_s,
        ),
        history_tokens=settings.model_history_tokens,
        prompt_rows=settings.model_prompt_rows,
        prompt_chars=settings.model_prompt_chars,
        today=settings.today,
    )
