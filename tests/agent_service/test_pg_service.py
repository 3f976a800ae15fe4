"""The whole agent service over HTTP with AGENT_DATABASE_URL set: each company's own numbers and
rules, memory that survives a restart, two apps on one database behaving as two replicas (shared
memory, a 409 across them while a reply is running), and delete erasing the checkpoints."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from psycopg.abc import Params
from psycopg_pool import AsyncConnectionPool
from support.pg_database import dsn_for, fresh_database
from support.servers import serve_asgi
from support.sse_client import stream_chat

from agent_service.app import create_app
from agent_service.deps import open_deps
from agent_service.errors import ConversationBusy, StoreUnavailable
from agent_service.settings import AgentSettings
from agent_service.sql.executor import SqlLimits
from agent_service.storage.postgres.active_runs import PostgresActiveRuns
from agent_service.storage.postgres.backends import DatabaseUnavailable
from agent_service.storage.postgres.conversations import PostgresConversationStore
from agent_service.storage.postgres.migrate import migrate
from agent_service.storage.postgres.sql_engine import PostgresExecutor, UnsafeReaderRole
from contracts.sse import SSEDecoder

pytestmark = pytest.mark.postgres

Mint = Callable[..., str]


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with fresh_database() as name:
        yield name


@pytest.fixture
def replica(database: str, tmp_path: Path) -> Callable[..., Any]:
    """An app on the shared database; two of them are two replicas."""

    @asynccontextmanager
    async def serve(**overrides: Any) -> AsyncIterator[str]:
        settings = AgentSettings(
            env="test",
            data_dir=tmp_path / "unused",  # every store lives in PostgreSQL
            database_url=dsn_for(database),
            **overrides,
        )
        async with serve_asgi(create_app(settings)) as url:
            yield url

    return serve


def owner_query(database: str, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn_for(database)) as conn:
        return conn.execute(sql, params).fetchall()


async def history(url: str, token: str, conversation: str) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{url}/internal/conversations/{conversation}",
            headers={"Authorization": f"Bearer {token}"},
        ) as resp,
    ):
        return resp.status, await resp.json()


async def test_two_companies_get_their_own_numbers_and_rules(
    replica: Callable[..., Any], mint: Mint, database: str
) -> None:
    async with replica() as url:
        answers = {}
        for company in ("acme-hvac", "bluepeak-plumbing"):
            token = mint(company=company)
            data = await stream_chat(
                url, token, "How many technicians are active?", company=company, conversation="d"
            )
            policy = await stream_chat(
                url, token, "What is the overtime policy?", company=company, conversation="p"
            )
            assert data.terminal["event"] == "complete", data.terminal
            assert policy.terminal["event"] == "complete", policy.terminal
            assert data.terminal["stats"]["route"] == "sql"
            assert policy.terminal["stats"]["route"] == "rag"
            answers[company] = (data.answer, policy.answer)
    for company, (data_answer, _) in answers.items():
        ((active,),) = owner_query(
            database,
            "SELECT count(*) FROM technicians WHERE company_id = %s AND status = 'active'",
            (company,),
        )
        assert str(active) in data_answer
    assert answers["acme-hvac"][0] != answers["bluepeak-plumbing"][0]
    acme_rule, bluepeak_rule = answers["acme-hvac"][1], answers["bluepeak-plumbing"][1]
    assert "counted by the week" in acme_rule and "Bluepeak" not in acme_rule
    assert "counted by the day" in bluepeak_rule and "Acme" not in bluepeak_rule


async def test_memory_survives_a_restart(replica: Callable[..., Any], mint: Mint) -> None:
    token = mint()
    async with replica() as url:
        first = await stream_chat(url, token, "How many technicians are active?", conversation="r")
        assert first.terminal["event"] == "complete"
    async with replica() as url:  # a new process on the same database
        status, before = await history(url, token, "r")
        follow = await stream_chat(url, token, "and how many are on leave?", conversation="r")
        _, after = await history(url, token, "r")
    assert status == 200
    assert [m["role"] for m in before["messages"]] == ["user", "assistant"]
    assert before["messages"][0]["content"] == "How many technicians are active?"
    assert follow.terminal["event"] == "complete"
    assert follow.terminal["stats"]["route"] == "sql"  # the follow-up kept the remembered route
    assert len(after["messages"]) == 4


async def test_a_conversation_continues_on_another_replica(
    replica: Callable[..., Any], mint: Mint
) -> None:
    token = mint(user="u-bob")
    async with replica() as a, replica() as b:
        one = await stream_chat(
            a, token, "How many technicians are active?", conversation="x", user="u-bob"
        )
        two = await stream_chat(
            b, token, "and how many are on leave?", conversation="x", user="u-bob"
        )
        _, seen_from_a = await history(a, token, "x")
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"{b}/internal/conversations", headers={"Authorization": f"Bearer {token}"}
            ) as resp,
        ):
            listed = await resp.json()
    assert one.terminal["event"] == two.terminal["event"] == "complete"
    assert two.terminal["stats"]["route"] == "sql"
    assert [m["content"] for m in seen_from_a["messages"] if m["role"] == "user"] == [
        "How many technicians are active?",
        "and how many are on leave?",
    ]
    assert [(c["id"], c["message_count"]) for c in listed["conversations"]] == [("x", 2)]


async def test_another_tenant_cannot_read_the_conversation(
    replica: Callable[..., Any], mint: Mint
) -> None:
    async with replica() as url:
        await stream_chat(url, mint(user="u-eve"), "hello", conversation="secret", user="u-eve")
        status, _ = await history(url, mint(user="u-eve", company="bluepeak-plumbing"), "secret")
        other_user, _ = await history(url, mint(user="u-mallory"), "secret")
    assert status == other_user == 404


async def test_busy_on_one_replica_is_409_on_the_other(
    replica: Callable[..., Any], mint: Mint
) -> None:
    token = mint(user="u-carol")
    body = {
        "input": {"message": "List all technicians"},
        "conversation": {"id": "busy", "user_id": "u-carol", "company_id": "acme-hvac"},
    }
    async with replica(offline_pace_ms=20) as a, replica(busy_wait_s=0.1) as b:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{a}/internal/chat/stream",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
            ) as resp,
        ):
            decoder = SSEDecoder()
            events: list[dict[str, Any]] = []
            busy = None
            async for chunk in resp.content.iter_any():
                for message in decoder.feed(chunk):
                    events.append(json.loads(message.data))
                if busy is None and any(e["event"] == "token" for e in events):
                    busy = await stream_chat(
                        b, token, "How many jobs?", conversation="busy", user="u-carol"
                    )
        # the reply on A is over: the conversation is free on B at once
        after = await stream_chat(b, token, "How many jobs?", conversation="busy", user="u-carol")
    assert busy is not None and busy.status == 409
    assert busy.events[0]["error"]["code"] == "CONVERSATION_BUSY"
    assert events[-1]["event"] == "complete"
    assert after.status == 200 and after.terminal["event"] == "complete"


async def test_delete_erases_the_checkpoints(
    replica: Callable[..., Any], mint: Mint, database: str
) -> None:
    token = mint(user="u-dave")
    thread = "acme-hvac/u-dave/gone"

    def stored() -> tuple[int, int, int]:
        ((checkpoints, writes, owned),) = owner_query(
            database,
            "SELECT (SELECT count(*) FROM checkpoints WHERE thread_id = %(t)s),"
            " (SELECT count(*) FROM checkpoint_writes WHERE thread_id = %(t)s)"
            " + (SELECT count(*) FROM checkpoint_blobs WHERE thread_id = %(t)s),"
            " (SELECT count(*) FROM conversations WHERE id = 'gone')",
            {"t": thread},
        )
        return checkpoints, writes, owned

    async with replica() as a, replica() as b:
        done = await stream_chat(
            a, token, "How many technicians?", conversation="gone", user="u-dave"
        )
        assert done.terminal["event"] == "complete"
        checkpoints, _, owned = stored()
        assert checkpoints > 0 and owned == 1
        async with (
            aiohttp.ClientSession() as session,
            session.delete(
                f"{b}/internal/conversations/gone", headers={"Authorization": f"Bearer {token}"}
            ) as resp,
        ):
            assert resp.status == 204
        status, _ = await history(a, token, "gone")
    assert stored() == (0, 0, 0)
    assert status == 404


async def test_a_misconfigured_sql_login_refuses_to_start(database: str, tmp_path: Path) -> None:
    settings = AgentSettings(
        env="test",
        data_dir=tmp_path,
        database_url=dsn_for(database),
        sql_database_url=dsn_for(database),  # the superuser: unsafe
    )
    with pytest.raises(UnsafeReaderRole, match="superuser"):
        async with open_deps(settings):
            pass


# -- the lease behind the 409: renewed while the run lives, expires when its replica dies ----------


@pytest.fixture
async def pool(database: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    await migrate(dsn_for(database))
    async with AsyncConnectionPool(
        dsn_for(database), min_size=1, max_size=4, kwargs={"autocommit": True}
    ) as opened:
        yield opened


async def test_a_crashed_replica_frees_its_conversations_when_the_lease_expires(
    pool: AsyncConnectionPool[Any],
) -> None:
    crashed = PostgresActiveRuns(
        pool, lease_s=0.5
    )  # never started: it will never renew, like a dead one
    other = PostgresActiveRuns(pool, lease_s=0.5)
    await crashed.acquire("acme-hvac/u/crash")
    with pytest.raises(ConversationBusy):
        await other.acquire("acme-hvac/u/crash")
    # a message that may wait (up to 20 lease lengths) gets the conversation once the lease expires
    waiting = PostgresActiveRuns(pool, lease_s=0.5, wait_s=10)
    try:
        await waiting.acquire("acme-hvac/u/crash")
    except ConversationBusy:
        raise AssertionError("the dead replica's lease never expired") from None
    await crashed.release("acme-hvac/u/crash")  # a late release must not free the new holder's run
    with pytest.raises(ConversationBusy):
        await PostgresActiveRuns(pool, lease_s=0.5).acquire("acme-hvac/u/crash")
    await waiting.release("acme-hvac/u/crash")


async def until_past_its_lease(pool: AsyncConnectionPool[Any], key: str, by_s: float) -> None:
    """Until the server's clock, the one leases expire by, is `by_s` past `key`'s current lease."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT expires_at + make_interval(secs => %s) FROM active_runs WHERE key = %s",
            (by_s, key),
        )
        row = await cursor.fetchone()
        assert row is not None, f"{key} is not leased"
        async with asyncio.timeout(10):
            while True:
                cursor = await conn.execute("SELECT now() > %s", row)
                if await cursor.fetchone() == (True,):
                    return
                await asyncio.sleep(0.05)


async def test_a_live_replica_keeps_renewing_its_lease(pool: AsyncConnectionPool[Any]) -> None:
    live = PostgresActiveRuns(pool, lease_s=0.3)
    await live.start()
    try:
        await live.acquire("acme-hvac/u/long")
        # several lease lengths: the lease it took would have lapsed twice over
        await until_past_its_lease(pool, "acme-hvac/u/long", by_s=0.6)
        with pytest.raises(ConversationBusy):
            await PostgresActiveRuns(pool, lease_s=0.3).acquire("acme-hvac/u/long")
    finally:
        await live.aclose()
    assert len(live) == 0
    fresh = PostgresActiveRuns(pool, lease_s=0.3)
    await fresh.acquire("acme-hvac/u/long")  # closed: its leases were handed back
    await fresh.release("acme-hvac/u/long")


async def test_a_database_that_is_down_is_a_503_not_a_500() -> None:
    dead = AsyncConnectionPool(
        "postgresql://postgres@127.0.0.1:1/nowhere",
        min_size=0,
        max_size=1,
        timeout=0.3,
        open=False,
    )
    await dead.open(wait=False)
    try:
        store = PostgresConversationStore(dead)
        with pytest.raises(StoreUnavailable) as caught:
            await store.list("acme-hvac", "u-alice")
        assert (caught.value.status, caught.value.code) == (503, "UPSTREAM_UNAVAILABLE")
        with pytest.raises(StoreUnavailable):
            await PostgresActiveRuns(dead, lease_s=1).acquire("acme-hvac/u/down")
    finally:
        await dead.close()


async def test_numeric_results_come_back_as_plain_numbers(database: str) -> None:
    await migrate(dsn_for(database))
    executor = PostgresExecutor(dsn_for(database, "agent_sql_reader"), SqlLimits())
    result = await executor.run(
        "acme-hvac",
        "SELECT CAST(2 AS DECIMAL), CAST(2.5 AS DECIMAL), CAST('NaN' AS DECIMAL), count(*)"
        " FROM jobs",
    )
    ((whole, half, nan, count),) = result.rows
    assert (whole, half, count) == (2, 2.5, count) and isinstance(whole, int)
    assert nan != nan  # a float NaN, not a crash
    json.dumps(result.rows)  # plain types only


async def test_an_unreachable_server_is_a_clear_start_up_error(tmp_path: Path) -> None:
    settings = AgentSettings(
        env="test",
        data_dir=tmp_path,
        database_url="postgresql://postgres@127.0.0.1:1/agent",
    )
    with pytest.raises(DatabaseUnavailable, match="PostgreSQL is not reachable"):
        async with open_deps(settings):
            pass


@pytest.mark.parametrize("message", ["How many jobs?\x00", "\x00", "How many jobs?\ud800"])
async def test_unstorable_text_is_refused_as_on_sqlite(
    replica: Callable[..., Any], mint: Mint, message: str
) -> None:
    # It used to reach the conversation store and fail there with a 500 INTERNAL.
    async with replica() as url:
        result = await stream_chat(url, mint(), message, conversation="nul")
    assert result.status == 400
    assert result.events[0]["error"]["code"] == "INVALID_REQUEST"
