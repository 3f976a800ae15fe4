"""Fixtures for the agent service: seeded data, a running service on loopback, minted tokens."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from support.servers import serve_asgi

from agent_service.app import create_app
from agent_service.deps import seed_demo
from agent_service.settings import DEV_INTERNAL_SECRET, AgentSettings
from contracts.internal_token import mint_internal_token


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo data seeded once per session; each test gets its own copy."""
    root = tmp_path_factory.mktemp("agent-template")
    seed_demo(AgentSettings(data_dir=root, env="test"), force=True)
    return root


@pytest.fixture
def data_dir(tmp_path: Path, seeded_template: Path) -> Path:
    target = tmp_path / "agent-data"
    shutil.copytree(seeded_template, target)
    return target


@pytest.fixture
def make_settings(data_dir: Path) -> Callable[..., AgentSettings]:
    def make(**overrides: Any) -> AgentSettings:
        return AgentSettings(data_dir=data_dir, env="test", seed_on_start=False, **overrides)

    return make


@pytest.fixture
async def agent_url(make_settings: Callable[..., AgentSettings]) -> AsyncIterator[str]:
    async with serve_asgi(create_app(make_settings())) as url:
        yield url


@pytest.fixture
def mint() -> Callable[..., str]:
    def make(user: str = "u-alice", company: str = "acme-hvac", **kwargs: Any) -> str:
        kwargs.setdefault("issuer", "gateway")
        kwargs.setdefault("key", DEV_INTERNAL_SECRET)
        return mint_internal_token(user_id=user, company_id=company, **kwargs)

    return make
