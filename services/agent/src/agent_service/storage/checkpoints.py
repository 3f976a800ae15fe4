"""Keeping one checkpoint per conversation: each holds the whole state, so older ones only cost
storage, growing quadratically over a long conversation."""

from __future__ import annotations

import sqlite3
from typing import Any

import structlog
from langgraph.checkpoint.base import BaseCheckpointSaver

from agent_service.storage.sqlite.memory import ThreadSqliteSaver

log = structlog.get_logger("agent_service.memory")

# The SQLite saver does not implement `aprune`; these statements follow its own schema
# (checkpoints and writes keyed by thread, namespace and checkpoint id). A test checks them.
_SQLITE_PRUNE = (
    """
    DELETE FROM writes WHERE thread_id = ?1 AND checkpoint_id NOT IN (
        SELECT max(checkpoint_id) FROM checkpoints WHERE thread_id = ?1 GROUP BY checkpoint_ns)
    """,
    """
    DELETE FROM checkpoints WHERE thread_id = ?1 AND checkpoint_id NOT IN (
        SELECT max(checkpoint_id) FROM checkpoints WHERE thread_id = ?1 GROUP BY checkpoint_ns)
    """,
)


async def keep_latest_checkpoint(checkpointer: BaseCheckpointSaver[Any], thread_id: str) -> None:
    """Drop every checkpoint of `thread_id` but the latest; never raises (memory is intact)."""
    try:
        if isinstance(checkpointer, ThreadSqliteSaver):

            def prune(conn: sqlite3.Connection) -> None:
                for statement in _SQLITE_PRUNE:
                    conn.execute(statement, (thread_id,))

            # one unit on the memory's thread: a run stopped here cannot leave it uncommitted
            await checkpointer.memory.write(prune)
        else:
            await checkpointer.aprune([thread_id], strategy="keep_latest")
    except Exception:
        log.warning("checkpoint_prune_failed", thread_id=thread_id, exc_info=True)
