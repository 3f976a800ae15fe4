"""Where the questions go: the agent service (in process or running) or the gateway. Each target
answers one turn of a conversation with a `Reply` (text, route, SQL, cited sources)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final, Protocol

import aiohttp
import uvicorn
from starlette.types import ASGIApp

from contracts.agent_api import ChatInput, ChatRequest, ConversationContext
from contracts.client import AgentAPIError, AgentClient, hs256_token_factory
from evals.agent_adapter import DEV_INTERNAL_SECRET, build_agent_app
from evals.scoring import Reply, SourceRef

DEMO_USERS: Final = {
    "acme-hvac": "u-alice",
    "bluepeak-plumbing": "u-bob",
    "citywide-electric": "u-carol",
}
"""The gateway's development users, one per company (the same ids on the agent service)."""
MAX_RATE_LIMIT_WAITS: Final = 20


class Target(Protocol):
    description: str

    async def ask(self, company: str, conversation_id: str, message: str) -> Reply: ...


def _reply(answer: str, stats: dict[str, Any]) -> Reply:
    sources = tuple(
        SourceRef(str(s.get("doc_id", "")), str(s.get("chunk_id", "")), str(s.get("snippet", "")))
        for s in stats.get("sources") or ()
    )
    return Reply(text=answer, route=stats.get("route"), sql=stats.get("sql"), sources=sources)


class AgentTarget:
    """`POST /internal/chat` of an agent service, with internal tokens signed by `secret`."""

    def __init__(self, client: AgentClient, description: str) -> None:
        self._client = client
        self.description = description

    async def ask(self, company: str, conversation_id: str, message: str) -> Reply:
        request = ChatRequest(
            input=ChatInput(message=message),
            conversation=ConversationContext(
                id=conversation_id, user_id=DEMO_USERS[company], company_id=company
            ),
        )
        try:
            answer = await self._client.chat(request)
        except AgentAPIError as exc:
            return Reply(text="", error=f"{exc.status} {exc.code}")
        return _reply(answer.answer, answer.stats.model_dump(mode="json"))


@asynccontextmanager
async def agent_target(url: str, secret: str, description: str) -> AsyncIterator[AgentTarget]:
    factory = hs256_token_factory("gateway", secret)
    async with AgentClient(url, token_factory=factory, chat_timeout_s=600) as client:
        yield AgentTarget(client, description)


class GatewayTarget:
    """`POST /api/chat/complete` of a gateway in development mode (tokens from `/auth/dev-token`);
    waits out 429s as `Retry-After` says."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self._session = session
        self._url = url.rstrip("/")
        self._tokens: dict[str, str] = {}
        self.description = f"gateway at {self._url}"

    async def _token(self, company: str) -> str:
        if company not in self._tokens:
            async with self._session.post(
                f"{self._url}/auth/dev-token",
                json={"user_id": DEMO_USERS[company], "company_id": company},
            ) as resp:
                resp.raise_for_status()
                self._tokens[company] = str((await resp.json())["token"])
        return self._tokens[company]

    async def ask(self, company: str, conversation_id: str, message: str) -> Reply:
        body = {"message": message, "conversation_id": conversation_id}
        for _ in range(MAX_RATE_LIMIT_WAITS):
            headers = {"Authorization": f"Bearer {await self._token(company)}"}
            async with self._session.post(
                f"{self._url}/api/chat/complete", json=body, headers=headers
            ) as resp:
                if resp.status == 429:
                    await asyncio.sleep(float(resp.headers.get("Retry-After", "5")))
                    continue
                payload = await resp.json()
                if resp.status != 200:
                    error = payload.get("error", {})
                    return Reply(text="", error=f"{resp.status} {error.get('code')}")
                return _reply(str(payload["answer"]), payload.get("stats") or {})
        return Reply(text="", error="429 RATE_LIMITED (gave up waiting)")


@asynccontextmanager
async def gateway_target(url: str) -> AsyncIterator[GatewayTarget]:
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        yield GatewayTarget(session, url)


@asynccontextmanager
async def serve(app: ASGIApp) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port inside this event loop."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the agent service exited before starting")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def in_process_target(data_dir: Path) -> AsyncIterator[AgentTarget]:
    """The agent service app built here on embedded defaults, served on loopback."""
    app, _ = build_agent_app(data_dir)
    async with serve(app) as url, agent_target(url, DEV_INTERNAL_SECRET, "in-process") as target:
        yield target
