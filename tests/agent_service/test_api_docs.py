"""`/docs` on the agent service: Swagger UI on its `/openapi.json`, every file from the service
itself, off in production unless `AGENT_API_DOCS` turns it on."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from support.servers import serve_asgi

from agent_service.app import create_app
from agent_service.settings import AgentSettings


async def test_docs_load_everything_from_the_service(agent_url: str) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{agent_url}/docs") as r:
            assert r.status == 200
            assert "script-src 'self'" in r.headers["Content-Security-Policy"]
            page = await r.text()
        links = re.findall(r'(?:src|href)="([^"]+)"', page)
        assert links and all(link.startswith("/docs/assets/") for link in links)
        for link in links:
            async with s.get(f"{agent_url}{link}") as r:
                assert r.status == 200, link
                assert await r.read()
        async with s.get(f"{agent_url}/docs/assets/init.js") as r:
            assert '"/openapi.json"' in await r.text()
        async with s.get(f"{agent_url}/docs/assets/LICENSE") as r:
            assert r.status == 404


async def test_docs_can_be_turned_off(make_settings: Callable[..., AgentSettings]) -> None:
    async with (
        serve_asgi(create_app(make_settings(api_docs=False))) as url,
        aiohttp.ClientSession() as s,
        s.get(f"{url}/docs") as r,
    ):
        assert r.status == 404


@pytest.mark.parametrize(
    ("values", "enabled"),
    [
        ({"env": "development"}, True),
        ({"env": "test"}, True),
        ({"env": "production"}, False),
        ({"env": "production", "api_docs": True}, True),
    ],
)
def test_docs_default_off_in_production(values: dict[str, Any], enabled: bool) -> None:
    assert AgentSettings.model_construct(**values).api_docs_enabled is enabled
