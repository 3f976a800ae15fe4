"""The agent service against the real-model lane's llama server (`tests/real_model/`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from agent_service.app import create_app
from agent_service.settings import AgentSettings
from support.llama_server import LlamaServer
from support.servers import serve_asgi

RUN_DEADLINE_S = 150.0
"""`AGENT_RUN_TIMEOUT_S` of the lane: a run ends with `complete` or a coded error by then."""
TEST_TIMEOUT_S = 2 * RUN_DEADLINE_S + 60
"""pytest-timeout for one lane test (at most two runs); the first also builds the server when
the cache is cold."""

LANE = {
    "provider": "openai",
    "model_name": "smollm2-135m",
    "today": "2026-11-15",
    "run_timeout_s": RUN_DEADLINE_S,
    "model_timeout_s": 60.0,
    "model_stall_timeout_s": 30.0,
    # a 135M model on two busy cores takes 15-25 s to read an answering prompt
    "model_first_token_timeout_s": 60.0,
    "model_max_retries": 1,
    "model_answer_max_tokens": 32,
    "sql_max_attempts": 1,
}
"""The agent's settings against the llama server (beside its URL): short answers, one SQL attempt,
timeouts that fit a 135M model on two shared cores."""


def lane_settings(llama: LlamaServer, data_dir: Path, **overrides: Any) -> AgentSettings:
    return AgentSettings(
        data_dir=data_dir,
        env="test",
        seed_on_start=False,
        openai_base_url=llama.base_url,
        **{**LANE, **overrides},
    )


@asynccontextmanager
async def agent(llama: LlamaServer, data_dir: Path, **overrides: Any) -> AsyncIterator[str]:
    """The agent service on loopback, pointed at the llama server; yields its URL."""
    async with serve_asgi(create_app(lane_settings(llama, data_dir, **overrides))) as url:
        yield url
