"""Which conversations have a run in progress: a second message to a busy conversation gets 409.

`InProcessActiveRuns` serves one replica; `storage.postgres.active_runs.PostgresActiveRuns` is the
same contract shared by every replica through PostgreSQL.
"""

from __future__ import annotations

from typing import Protocol

from agent_service.errors import ConversationBusy
from agent_service.providers.base import TenantContext


def thread_key(tenant: TenantContext) -> str:
    """The checkpointer thread of a conversation: namespaced so ids never collide across owners."""
    return f"{tenant.company_id}/{tenant.user_id}/{tenant.conversation_id}"


class RunRegistry(Protocol):
    """Conversations with a run in progress: `acquire` raises `ConversationBusy` when taken."""

    async def acquire(self, key: str) -> None: ...

    async def release(self, key: str) -> None: ...

    def __len__(self) -> int: ...


class InProcessActiveRuns:
    """Conversations with a run in progress in this process (a second message gets 409)."""

    def __init__(self) -> None:
        self._keys: set[str] = set()

    async def acquire(self, key: str) -> None:
        if key in self._keys:
            raise ConversationBusy("a reply is still being written in this conversation")
        self._keys.add(key)

    async def release(self, key: str) -> None:
        self._keys.discard(key)

    def __len__(self) -> int:
        return len(self._keys)
