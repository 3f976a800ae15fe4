"""Token subjects outside the contract's id pattern reach the agent as a stable safe id."""

from __future__ import annotations

import re

import aiohttp
import pytest
from support.gateway_harness import FakeUpstream, gateway_settings, running_gateway, sql_answer

from contracts.agent_api import ID_PATTERN, MAX_ID_CHARS
from gateway.auth import Principal
from gateway.identity import contract_id, upstream_identity

SAFE = re.compile(r"h-[0-9a-f]{40}")


@pytest.mark.parametrize(
    "claim", ["u-alice", "acme-hvac", "user@example.com", "a:b.c_d", "x" * 128]
)
def test_ids_that_fit_pass_unchanged(claim: str) -> None:
    assert contract_id(claim) == claim


@pytest.mark.parametrize(
    "claim",
    [
        "auth0|abc",
        "me+tag@example.com",
        "x" * 129,
        "-leading-dash",
        "ünïcode",
        "has space",
        "h-" + "0" * 40,  # already in the mapped form: mapped again, so no claim can collide
    ],
)
def test_ids_that_do_not_fit_map_to_a_stable_safe_id(claim: str) -> None:
    mapped = contract_id(claim)
    assert SAFE.fullmatch(mapped)
    assert re.fullmatch(ID_PATTERN, mapped) and len(mapped) <= MAX_ID_CHARS
    assert contract_id(claim) == mapped
    assert contract_id(claim + "x") != mapped


def test_user_and_company_are_mapped_the_same_way() -> None:
    principal = Principal(user_id="auth0|abc", company_id="org|1", issuer="i", expires_at=0)
    identity = upstream_identity(principal)
    assert (identity.user_id, identity.company_id) == (
        contract_id("auth0|abc"),
        contract_id("org|1"),
    )


async def test_an_auth0_subject_can_chat_and_list_its_conversations(
    upstream: FakeUpstream,
) -> None:
    upstream.script = sql_answer()
    user = "auth0|abc+x@y"
    async with running_gateway(gateway_settings(upstream.url)) as gw, aiohttp.ClientSession() as s:
        async with s.post(
            f"{gw.url}/api/chat/stream", json={"message": "How many?"}, headers=gw.auth(user)
        ) as r:
            assert r.status == 200, await r.text()
            await r.read()
        async with s.get(f"{gw.url}/api/conversations", headers=gw.auth(user)) as r:
            assert r.status == 200, await r.text()
        async with s.get(f"{gw.url}/api/conversations/conv-known", headers=gw.auth(user)) as r:
            assert r.status == 200, await r.text()
    (stream,) = upstream.streams()
    assert stream.body["conversation"]["user_id"] == contract_id(user)
    assert stream.body["conversation"]["company_id"] == "acme-hvac"
