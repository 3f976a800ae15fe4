"""Internal tokens are bound to their request (issue 13.12): a token minted for one call cannot
be replayed, on another route or on the same one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import jwt
import pytest
from support.servers import serve_asgi
from support.sse_client import stream_chat

from agent_service.app import create_app
from agent_service.internal_auth import InternalIdentity, SeenTokens
from agent_service.settings import DEV_INTERNAL_SECRET, AgentSettings
from contracts.client import hs256_token_factory
from contracts.internal_token import RequestBinding

Mint = Callable[..., str]
LIST = RequestBinding("GET", "/internal/conversations")


async def call(url: str, method: str, path: str, token: str) -> int:
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, url + path, headers={"Authorization": f"Bearer {token}"}) as r,
    ):
        return r.status


async def test_a_bound_token_works_once_and_only_for_its_request(
    agent_url: str, mint: Mint
) -> None:
    token = mint(binding=LIST)
    other_route = mint(binding=LIST)
    assert await call(agent_url, "GET", "/internal/conversations", token) == 200
    # replayed on the same call: refused
    assert await call(agent_url, "GET", "/internal/conversations", token) == 401
    # a fresh token of the list call, used to delete or read a conversation: refused
    assert await call(agent_url, "DELETE", "/internal/conversations/conv-1", other_route) == 401
    assert await call(agent_url, "GET", "/internal/conversations/conv-1", other_route) == 401


async def test_a_chat_token_cannot_be_replayed_as_another_message(
    agent_url: str, mint: Mint
) -> None:
    token = mint(binding=RequestBinding("POST", "/internal/chat/stream"))
    first = await stream_chat(agent_url, token, "How many technicians are active?")
    again = await stream_chat(agent_url, token, "Delete everything")
    assert first.terminal["event"] == "complete"
    assert again.status == 401


async def test_unbound_tokens_can_be_required_off(
    make_settings: Callable[..., AgentSettings], mint: Mint
) -> None:
    settings = make_settings(internal_require_bound_tokens=True)
    async with serve_asgi(create_app(settings)) as url:
        unbound = await call(url, "GET", "/internal/conversations", mint())
        bound = await call(url, "GET", "/internal/conversations", mint(binding=LIST))
    assert (unbound, bound) == (401, 200)


def test_the_client_factory_binds_every_token() -> None:
    factory = hs256_token_factory("gateway", DEV_INTERNAL_SECRET)
    token = factory("u-alice", "acme-hvac", "req-1", binding=LIST)
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    assert (claims["htm"], claims["htu"]) == ("GET", "/internal/conversations")


def identity(jti: str, expires_at: float) -> InternalIdentity:
    return InternalIdentity("gateway", "u", "c", None, jti, expires_at, bound=True)


@pytest.mark.parametrize("leeway", [0.0, 5.0])
def test_seen_tokens_forget_expired_ids_and_stay_bounded(leeway: float) -> None:
    seen = SeenTokens(max_entries=3)
    assert seen.first_use(identity("a", 100), now=50, leeway_s=leeway)
    assert not seen.first_use(identity("a", 100), now=60, leeway_s=leeway)
    for jti in "bcdef":
        assert seen.first_use(identity(jti, 100), now=60, leeway_s=leeway)
    assert len(seen) <= 3
    # after its expiry an id is forgotten (the token itself is refused as expired anyway)
    assert seen.first_use(identity("f", 200), now=100 + leeway + 1, leeway_s=leeway)
    assert len(seen) == 1
