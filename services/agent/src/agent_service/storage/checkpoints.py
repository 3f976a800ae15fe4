"""Keeping one checkpoint per conversation: each holds the whole state, so older ones only cost
storage, growing quadratically over a long conversation."""

from __future__ import annotations

from typing import Any

import structlog
from langgraph.checkpoint.base import BaseCheckpointSaver

from agent_service.storage.sqlite.memory import ThreadSqliteSaver

log = structlog.get_logger("agent_service.memory")


async def keep_latest_checkpoint(checkpointer: BaseCheckpointSaver[Any], thread_id: str) -> None:
    """Drop every checkpoint of `thread_id` but the latest; never raises (memory is intact).

    The embedded saver needs no call: it drops the older ones as it stores a new one, in the
    same unit on its thread (`ThreadSqliteSaver.put`)."""
    if isinstance(checkpointer, ThreadSqliteSaver):
        return
    try:
        await checkpointer.aprune([thread_id], strategy="keep_latest")
    except Exception:
        log.warning("checkpoint_prune_failed", thread_id=thread_id, exc_info=True)
