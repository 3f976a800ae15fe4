"""The real-model lane: the agent service against llama.cpp's OpenAI-compatible server serving
SmolLM2-135M (`support/llama_server.py`), started once per session.

A 135M model answers badly and slowly; these tests assert only what must hold whatever it says.
Each run is one to three model calls of a few seconds to a minute on two busy cores, so the lane
asks a handful of questions with short answers (`AGENT_MODEL_ANSWER_MAX_TOKENS`).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.llama_server import BUILD_TIMEOUT_S, LlamaServer, is_built, running_llama_server
from support.real_model_harness import TEST_TIMEOUT_S

from agent_service.deps import seed_demo
from agent_service.settings import AgentSettings


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every lane test is bounded; the first one of a cold cache also pays for the build
    (`support.llama_server.BUILD_TIMEOUT_S`). (Each module sets `pytestmark = real_model`.)"""
    first = True
    for item in items:
        if item.path.parent != Path(__file__).parent:
            continue
        extra = BUILD_TIMEOUT_S if first and not is_built() else 0
        item.add_marker(pytest.mark.timeout(TEST_TIMEOUT_S + extra))
        first = False


@pytest.fixture(scope="session")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    with running_llama_server(tmp_path_factory.mktemp("llama")) as server:
        yield server


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("real-model-data")
    seed_demo(AgentSettings(data_dir=root, env="test"), force=True)
    return root


@pytest.fixture
def data_dir(tmp_path: Path, seeded: Path) -> Path:
    target = tmp_path / "agent-data"
    shutil.copytree(seeded, target)
    return target
