"""Buffered runs shared by every gateway replica: one Redis Stream per run, with a TTL.

The replica that produces a run keeps it in memory too (its own followers never read Redis) and
appends its new events in batches, at most every `flush_s` and at once at the end: never one
round trip per token. Another replica resumes a run by reading the stream (`XRANGE`, then
`XREAD BLOCK` until the run's last event). Keys: `<prefix>:run:<id>` (meta, JSON),
`<prefix>:run:<id>:events` (entries `b` = a JSON array of agent events, `end` = "1" on the last),
`<prefix>:run:<id>:stop` (a stop asked from another replica), `<prefix>:active:<company>:<user>:
<conversation>` (the conversation's running run). All expire `retention_s` after the last write.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, Callable
from typing import Any, Final

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from contracts.agent_api import AGENT_EVENT_ADAPTER, AgentEvent, TokenEvent
from gateway.auth import Principal
from gateway.run_buffer import MemoryRunStore, ResumeConfig, RunBuffer, RunMeta

log = structlog.get_logger("gateway.redis_runs")

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
BLOCK_MS: Final = 5000
"""One `XREAD BLOCK` wait; a follower gives up after `idle_s` without a new entry."""


def event_json(event: AgentEvent) -> str:
    """One agent event as JSON; hand-rolled for tokens (the per-token path)."""
    if type(event) is TokenEvent:
        return '{"event":"token","channel":"%s","content":%s}' % (  # noqa: UP031
            event.channel,
            _dumps(event.content),
        )
    return event.model_dump_json()


class RedisRunStore:
    """Runs in Redis for every replica, and this replica's runs in memory as well."""

    def __init__(
        self,
        config: ResumeConfig,
        url: str,
        *,
        prefix: str,
        timeout_s: float,
        on_stop: Callable[[str], object],
        idle_s: float = 60.0,
    ) -> None:
        self.config = config
        self.memory = MemoryRunStore(config)
        self._prefix = prefix
        self._on_stop = on_stop
        self._idle_s = idle_s
        self._timeout_s = timeout_s
        self._redis = aioredis.Redis.from_url(url, socket_timeout=timeout_s)
        # A blocking read waits longer than a command may take: its own connection pool.
        self._reader = aioredis.Redis.from_url(url, socket_timeout=BLOCK_MS / 1000 + timeout_s)
        self._flushed: dict[str, int] = {}
        """Per run of this replica: how many of its events are in Redis."""
        self._pending: dict[str, asyncio.TimerHandle | None] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._locks: dict[str, asyncio.Lock] = {}

    def _key(self, run_id: str) -> str:
        return f"{self._prefix}:run:{run_id}"

    def _active_key(self, company_id: str, user_id: str, conversation_id: str) -> str:
        return f"{self._prefix}:active:{company_id}:{user_id}:{conversation_id}"

    def begin(self, meta: RunMeta) -> RunBuffer:
        """Buffer in memory; the meta and events reach Redis with the first flush."""
        buffer = self.memory.begin(meta)
        self._flushed[meta.run_id] = 0
        self._pending[meta.run_id] = None
        self._spawn(self._flush(buffer))
        return buffer

    def flushed(self, buffer: RunBuffer) -> None:
        """Schedule one batched append (now if the run ended)."""
        run_id = buffer.meta.run_id
        if run_id not in self._pending:
            return
        if buffer.ended:
            handle = self._pending.get(run_id)
            if handle is not None:
                handle.cancel()
            self._pending[run_id] = None
            self._spawn(self._flush(buffer))
            return
        if self._pending[run_id] is None:
            loop = asyncio.get_running_loop()
            self._pending[run_id] = loop.call_later(
                self.config.flush_s, lambda: self._spawn(self._flush(buffer))
            )

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush(self, buffer: RunBuffer) -> None:
        run_id = buffer.meta.run_id
        lock = self._locks.setdefault(run_id, asyncio.Lock())
        # One append at a time per run: batches reach the stream in order.
        async with lock:
            await self._flush_locked(buffer)
        if run_id not in self._flushed:
            self._locks.pop(run_id, None)

    async def _flush_locked(self, buffer: RunBuffer) -> None:
        meta = buffer.meta
        run_id = meta.run_id
        if self._pending.get(run_id) is not None:
            self._pending[run_id] = None
        start = self._flushed.get(run_id)
        if start is None:
            return
        events = buffer.events[start:]
        ended = buffer.ended
        self._flushed[run_id] = start + len(events)
        ttl = int(self.config.retention_s)
        key = self._key(run_id)
        active = self._active_key(meta.company_id, meta.user_id, meta.conversation_id)
        try:
            pipe = self._redis.pipeline(transaction=False)
            if start == 0:
                pipe.set(key, json.dumps(meta.as_dict()), ex=ttl)
                pipe.set(active, run_id, ex=ttl)
            if events or ended:
                fields = {"b": "[" + ",".join(event_json(e) for e in events) + "]"}
                if ended:
                    fields["end"] = "1"
                pipe.xadd(f"{key}:events", fields)  # type: ignore[arg-type]
                pipe.expire(f"{key}:events", ttl)
                pipe.expire(key, ttl)
            if ended:
                pipe.delete(active)
                self._flushed.pop(run_id, None)
                self._pending.pop(run_id, None)
            pipe.get(f"{key}:stop")
            results = await pipe.execute()
        except (RedisError, OSError):
            # The run goes on for its own clients; other replicas cannot resume it.
            log.warning("run_flush_failed", run_id=run_id, exc_info=True)
            return
        if results and results[-1] is not None and not ended:
            self._on_stop(run_id)

    async def find(self, run_id: str) -> RunMeta | None:
        """This replica's run, else one in Redis."""
        local = self.memory.local(run_id)
        if local is not None:
            return local.meta
        try:
            raw = await self._redis.get(self._key(run_id))
        except (RedisError, OSError):
            log.warning("run_lookup_failed", exc_info=True)
            return None
        if raw is None:
            return None
        try:
            return RunMeta(**json.loads(raw))
        except (TypeError, ValueError):
            return None

    async def active_run(self, principal: Principal, conversation_id: str) -> RunMeta | None:
        """The conversation's running run, on any replica."""
        key = self._active_key(principal.company_id, principal.user_id, conversation_id)
        try:
            run_id: Any = await self._redis.get(key)
        except (RedisError, OSError):
            return await self.memory.active_run(principal, conversation_id)
        if run_id is None:
            return None
        meta = await self.find(run_id.decode())
        return meta if meta is not None and meta.owned_by(principal) else None

    def follow(self, meta: RunMeta, start: int = 0) -> AsyncGenerator[AgentEvent, None]:
        """This replica's buffer, else the run's Redis Stream."""
        if self.memory.local(meta.run_id) is not None:
            return self.memory.follow(meta, start)
        return self._follow_remote(meta, start)

    async def _follow_remote(self, meta: RunMeta, start: int) -> AsyncGenerator[AgentEvent, None]:
        key = f"{self._key(meta.run_id)}:events"
        last_id = "0-0"
        index = 0
        loop = asyncio.get_running_loop()
        idle_since = loop.time()
        while True:
            reply: Any = await self._reader.xread({key: last_id}, block=BLOCK_MS, count=100)
            if not reply:
                if loop.time() - idle_since > self._idle_s:
                    return  # the producing replica is gone: the relay reports a cut answer
                continue
            idle_since = loop.time()
            entries: list[tuple[bytes, dict[bytes, bytes]]] = reply[0][1]
            for entry_id, fields in entries:
                last_id = entry_id.decode()
                for raw in json.loads(fields[b"b"]):
                    if index >= start:
                        yield AGENT_EVENT_ADAPTER.validate_python(raw)
                    index += 1
                if fields.get(b"end"):
                    return

    async def request_stop(self, meta: RunMeta) -> bool:
        """Mark the run stopped; its producer sees it with its next flush."""
        key = self._key(meta.run_id)
        try:
            await self._redis.set(f"{key}:stop", "1", ex=int(self.config.retention_s))
            return bool(await self._redis.exists(key))
        except (RedisError, OSError):
            log.warning("run_stop_failed", exc_info=True)
            return False

    async def close(self) -> None:
        """Finish pending appends, then close the connections."""
        for handle in self._pending.values():
            if handle is not None:
                handle.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(RedisError, OSError):
            await self._redis.aclose()
            await self._reader.aclose()
