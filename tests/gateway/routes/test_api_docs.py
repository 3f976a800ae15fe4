"""`/openapi.json` and `/docs`: the document names exactly the routes the gateway serves, its
references resolve, and the interactive docs load every file from the gateway itself."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest
from support.gateway_harness import FakeUpstream, running_gateway

from gateway.app import create_app
from gateway.openapi import openapi_document
from gateway.settings import GatewaySettings

UNDOCUMENTED = {"/openapi.json", "/docs", "/docs/assets/{name}"}
"""The docs' own routes."""


def _routed() -> set[tuple[str, str]]:
    app = create_app(GatewaySettings(env="development", api_docs=True, dev_auth=True))
    return {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD"
        and route.resource is not None
        and route.resource.canonical not in UNDOCUMENTED
    }


def _documented() -> set[tuple[str, str]]:
    return {(method, path) for path, ops in openapi_document()["paths"].items() for method in ops}


def test_the_document_names_every_route_and_only_those() -> None:
    assert _documented() == _routed()


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node)) if node else set()
    return set()


def test_every_reference_resolves() -> None:
    document = openapi_document()
    schemas = document["components"]["schemas"]
    refs = _refs(document)
    assert refs, "the document references its schemas"
    missing = {r for r in refs if r.removeprefix("#/components/schemas/") not in schemas}
    assert missing == set()


def test_the_new_surfaces_are_described_by_their_own_models() -> None:
    schemas = openapi_document()["components"]["schemas"]
    assert "threadId" in schemas["RunAgentInput"]["properties"]
    assert "conversation_id" in schemas["ChatCompletionRequest"]["properties"]
    assert schemas["OpenAIErrorBody"]["properties"]["error"]["$ref"].endswith("/OpenAIError")


async def fetch(session: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, str], bytes]:
    async with session.get(url) as resp:
        return resp.status, dict(resp.headers), await resp.read()


async def test_docs_load_everything_from_the_gateway(upstream: FakeUpstream) -> None:
    settings = GatewaySettings(env="development", agent_url=upstream.url)  # docs on by default
    async with running_gateway(settings) as gw, aiohttp.ClientSession() as session:
        status, _, body = await fetch(session, f"{gw.url}/openapi.json")
        assert status == 200
        assert body.startswith(b'{"openapi":"3.1.0"')
        status, headers, page = await fetch(session, f"{gw.url}/docs")
        assert status == 200
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        links = re.findall(r'(?:src|href)="([^"]+)"', page.decode())
        assert links and all(link.startswith("/docs/assets/") for link in links)
        for link in links:
            status, _, asset = await fetch(session, f"{gw.url}{link}")
            assert status == 200 and asset, link
        status, _, init = await fetch(session, f"{gw.url}/docs/assets/init.js")
        assert b'"/openapi.json"' in init
        status, _, _ = await fetch(session, f"{gw.url}/docs/assets/LICENSE")
        assert status == 404


@pytest.mark.parametrize(("api_docs", "served"), [(None, False), (True, True)])
async def test_production_serves_docs_only_when_enabled(
    upstream: FakeUpstream, api_docs: bool | None, served: bool
) -> None:
    settings = GatewaySettings(
        env="production",
        agent_url=upstream.url,
        internal_key="p" * 40,
        jwt_hs256_secret="s" * 40,
        api_docs=api_docs,
    )
    async with running_gateway(settings) as gw, aiohttp.ClientSession() as session:
        for path in ("/docs", "/openapi.json"):
            status, _, _ = await fetch(session, f"{gw.url}{path}")
            assert (status == 200) is served, path
