"""Which conversations have a run in progress: a second message to a busy conversation gets 409.

`InProcessActiveRuns` serves one replica; `storage.postgres.active_runs.PostgresActiveRuns` is the
same contract shared by every replica through PostgreSQL.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from agent_service.errors import ConversationBusy
from agent_service.providers.base import TenantContext


def thread_key(tenant: TenantContext) -> str:
    """The checkpointer thread of a conversation: namespaced so ids never collide across owners."""
    return f"{tenant.company_id}/{tenant.user_id}/{tenant.conversation_id}"


class RunRegistry(Protocol):
    """Conversations with a run in progress: `acquire` raises `ConversationBusy` when still taken
    after a short bounded wait (a stopped run ending frees it within moments)."""

    async def acquire(self, key: str) -> None: ...

    async def release(self, key: str) -> None: ...

    def __len__(self) -> int: ...


class InProcessActiveRuns:
    """Conversations with a run in progress in this process (a second message gets 409).

    A message arriving while the previous run is still ending (a stop) waits up to `wait_s`.
    """

    def __init__(self, *, wait_s: float = 0.0) -> None:
        self._keys: dict[str, asyncio.Event] = {}
        self._wait_s = wait_s

    async def acquire(self, key: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_s
        while (freed := self._keys.get(key)) is not None:
            try:
                async with asyncio.timeout_at(deadline):
                    await freed.wait()
            except TimeoutError:
                raise ConversationBusy(
                    "a reply is still being written in this conversation"
                ) from None
        self._keys[key] = asyncio.Event()

    async def release(self, key: str) -> None:
        freed = self._keys.pop(key, None)
        if freed is not None:
            freed.set()

    def __len__(self) -> int:
        return len(self._keys)
