"""The production-like topology for real: two agent replicas on PostgreSQL, two gateways on Redis.

A conversation continues on whichever replica gets the next message, limits are exact across
gateway replicas, and restarting any one process loses no conversation and no rate-limit state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from support.deploy_stack import (
    USER_LIMIT,
    ask,
    call,
    served_by,
    unique,
    user_token,
    work_served,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(240)]

FIRST = "How many jobs were completed in October?"
FOLLOW_UP = "and the month before?"
"""Only answerable from the first turn: alone, it names no measure to move back a month."""


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # A bound on every call: a hung request fails the test instead of hanging it.
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


async def counts(http: aiohttp.ClientSession, stack: Any) -> list[int]:
    return [await work_served(http, url) for url in stack.config.agent_urls]


def uses_memory(reply: Any) -> bool:
    """Whether the follow-up was answered from the previous turn (completed jobs, a month back)."""
    sql = reply.body["stats"].get("sql") or ""
    return "completed" in sql and "2026-09-01" in sql and "2026-09-30" in sql


async def test_a_conversation_continues_on_the_other_agent_replica(
    stack: Any, http: aiohttp.ClientSession
) -> None:
    agents = stack.config.agent_urls
    gateway_a, gateway_b = stack.config.gateway_urls
    token = user_token(stack.config, unique("u-spread"))
    conversation = unique("conv")

    before = await counts(http, stack)
    first = await ask(http, gateway_a, token, FIRST, conversation)
    assert first.status == 200, first.body
    assert "2026-10-01" in (first.body["stats"].get("sql") or ""), first.body
    first_agent = await served_by(http, agents, before)

    # Gateway B goes round-robin: once a call of B lands on the first turn's agent, its next
    # call goes to the other one.
    for _ in range(len(agents)):
        before = await counts(http, stack)
        listed = await call(http, "GET", f"{gateway_b}/api/conversations", token)
        assert listed.status == 200, listed.body
        if await served_by(http, agents, before) == first_agent:
            break
    before = await counts(http, stack)
    second = await ask(http, gateway_b, token, FOLLOW_UP, conversation)
    assert second.status == 200, second.body
    assert await served_by(http, agents, before) != first_agent
    assert uses_memory(second), second.body

    # Control: the same words with no earlier turn have nothing to follow up on.
    fresh = await ask(http, gateway_b, token, FOLLOW_UP, unique("conv"))
    assert fresh.status == 200, fresh.body
    assert not uses_memory(fresh), fresh.body

    # Both gateways, and so both agents in turn, show the whole conversation.
    for gateway in (gateway_a, gateway_b, gateway_a, gateway_b):
        history = await call(http, "GET", f"{gateway}/api/conversations/{conversation}", token)
        assert history.status == 200, history.body
        assert [m["role"] for m in history.body["messages"]] == ["user", "assistant"] * 2
        assert history.body["messages"][2]["content"] == FOLLOW_UP


async def test_limits_are_exact_across_gateway_replicas_under_a_burst(
    stack: Any, http: aiohttp.ClientSession
) -> None:
    token = user_token(stack.config, unique("u-burst"))
    gateways = stack.config.gateway_urls
    burst = 3 * USER_LIMIT
    replies = await asyncio.gather(
        *(
            ask(http, gateways[i % len(gateways)], token, FIRST, unique("conv"))
            for i in range(burst)
        )
    )
    statuses = sorted(r.status for r in replies)
    assert statuses == [200] * USER_LIMIT + [429] * (burst - USER_LIMIT)
    refused = [r for r in replies if r.status == 429]
    assert all(r.body["error"]["code"] == "RATE_LIMITED" for r in refused)
    assert all(int(r.headers["Retry-After"]) > 0 for r in refused)
    # Both replicas refused some: the count really is shared, not per replica.
    per_gateway = {
        g: [r.status for i, r in enumerate(replies) if gateways[i % 2] == g] for g in gateways
    }
    assert all(429 in statuses for statuses in per_gateway.values())


async def test_restarting_each_process_in_turn_loses_no_conversation_and_no_limit(
    stack: Any, http: aiohttp.ClientSession
) -> None:
    gateways = stack.config.gateway_urls
    owner = user_token(stack.config, unique("u-owner"))
    conversation = unique("conv")
    first = await ask(http, gateways[0], owner, FIRST, conversation)
    assert first.status == 200, first.body

    # Another user spends their whole window.
    limited = user_token(stack.config, unique("u-limited"))
    spent = await asyncio.gather(
        *(ask(http, gateways[i % 2], limited, FIRST, unique("conv")) for i in range(USER_LIMIT))
    )
    assert [r.status for r in spent] == [200] * USER_LIMIT
    assert (await ask(http, gateways[1], limited, FIRST, unique("conv"))).status == 429

    for replica in [*stack.gateways, *stack.agents]:
        # In a thread: this loop must keep running to see the old process close its connections.
        await asyncio.to_thread(stack.restart, replica)
        for gateway in gateways:
            # The limit lives in Redis: still spent, whichever gateway restarted.
            still = await ask(http, gateway, limited, FIRST, unique("conv"))
            assert still.status == 429, (replica.name, still.body)
            # Memory and ownership live in PostgreSQL: the conversation is whole on every agent
            # (two calls through one gateway go to both agent replicas in turn).
            for _ in stack.agents:
                history = await call(
                    http, "GET", f"{gateway}/api/conversations/{conversation}", owner
                )
                assert history.status == 200, (replica.name, history.body)
                assert history.body["messages"][0]["content"] == FIRST

    follow_up = await ask(http, gateways[1], owner, FOLLOW_UP, conversation)
    assert follow_up.status == 200, follow_up.body
    assert uses_memory(follow_up), follow_up.body
