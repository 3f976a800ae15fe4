"""Both real tiers on loopback: the agent service (offline provider, seeded SQLite), the gateway."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.gateway_harness import gateway_settings, running_gateway
from support.servers import serve_asgi
from support.stack import Stack

from agent_service.app import create_app as create_agent
from agent_service.deps import seed_demo
from agent_service.settings import AgentSettings


@pytest.fixture(scope="session")
def e2e_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("e2e-template")
    seed_demo(AgentSettings(data_dir=root, env="test"), force=True)
    return root


@pytest.fixture
async def stack(tmp_path: Path, e2e_template: Path) -> AsyncIterator[Stack]:
    data_dir = tmp_path / "agent"
    shutil.copytree(e2e_template, data_dir)
    agent = create_agent(AgentSettings(data_dir=data_dir, env="test", seed_on_start=False))
    async with serve_asgi(agent) as agent_url, running_gateway(gateway_settings(agent_url)) as gw:
        yield Stack(agent_url=agent_url, gateway=gw, data_dir=data_dir)
