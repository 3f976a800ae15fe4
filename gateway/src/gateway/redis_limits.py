"""Rate limits shared by every gateway replica: atomic Lua scripts on Redis, timed by Redis `TIME`.

Each script gathers the live state of a principal's keys (and consumes when allowed) in one
atomic step; `gateway.rate_limit`'s pure functions then turn that state into decisions, so the
Redis and in-process backends answer alike. Keys of one company share a `{hash tag}` so the
scripts also run on Redis Cluster. Stamps travel as microseconds relative to the server's now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar
from urllib.parse import quote

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from gateway.auth import Principal
from gateway.rate_limit import (
    Lease,
    LimitDecision,
    LimiterUnavailable,
    LimitsConfig,
    admit_decisions,
    check_tokens,
    lease_decision,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
Arg = str | int
_US: Final = 1_000_000
_WARN_EVERY_S: Final = 10.0

_COMMON: Final = """
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
-- Lua 5.1 prints large numbers as 1.7e+15: format scores explicitly.
local function s(x) return string.format('%.0f', x) end
-- Live token total of a charge log (members "id:tokens"), dropping charges at or before `cutoff`.
local function live_tokens(log, total, cutoff)
  local dead = redis.call('ZRANGEBYSCORE', log, '-inf', s(cutoff))
  if #dead > 0 then redis.call('ZREMRANGEBYSCORE', log, '-inf', s(cutoff)) end
  if redis.call('ZCARD', log) == 0 then redis.call('DEL', total) return 0 end
  local cur = redis.call('GET', total)
  if not cur then
    -- The running total was lost (evicted): rebuild it from the log.
    local sum = 0
    for _, m in ipairs(redis.call('ZRANGE', log, 0, -1)) do
      sum = sum + tonumber(string.match(m, ':(%d+)$'))
    end
    redis.call('SET', total, s(sum))
    local ttl = redis.call('PTTL', log)
    if ttl > 0 then redis.call('PEXPIRE', total, ttl) end
    return sum
  end
  if #dead == 0 then return tonumber(cur) end
  local gone = 0
  for _, m in ipairs(dead) do gone = gone + tonumber(string.match(m, ':(%d+)$')) end
  return redis.call('DECRBY', total, s(gone))
end
-- The `n` oldest scores of a zset, relative to now.
local function head(key, n, now)
  local out = {}
  local r = redis.call('ZRANGE', key, 0, n - 1, 'WITHSCORES')
  for i = 2, #r, 2 do out[#out + 1] = tonumber(r[i]) - now end
  return out
end
"""

ADMIT_LUA: Final = (
    _COMMON
    + """
-- KEYS: user log, company log, token log, token total
-- ARGV: user limit, user window us, company limit, company window us, budget, token window us, id
local now = now_us()
local ul, uw, cl, cw = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local budget, tw = tonumber(ARGV[5]), tonumber(ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', s(now - uw))
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', s(now - cw))
local used = live_tokens(KEYS[3], KEYS[4], now - tw)
local uu, cu = redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2])
local uh = head(KEYS[1], math.max(1, uu - ul + 1), now)
local ch = head(KEYS[2], math.max(1, cu - cl + 1), now)
-- Oldest charges until the total would drop under the budget (one when allowed), read in
-- pages so a refused request never loads the whole log.
local th, left, start, done = {}, used, 0, false
while not done do
  local r = redis.call('ZRANGE', KEYS[3], start, start + 63, 'WITHSCORES')
  if #r == 0 then break end
  for i = 1, #r, 2 do
    local n = tonumber(string.match(r[i], ':(%d+)$'))
    th[#th + 1] = {tonumber(r[i + 1]) - now, n}
    left = left - n
    if left < budget then done = true break end
  end
  start = start + 64
end
if uu < ul and cu < cl and used < budget then
  redis.call('ZADD', KEYS[1], s(now), ARGV[7])
  redis.call('PEXPIRE', KEYS[1], s(math.ceil(uw / 1000)))
  redis.call('ZADD', KEYS[2], s(now), ARGV[7])
  redis.call('PEXPIRE', KEYS[2], s(math.ceil(cw / 1000)))
end
return {uu, uh, cu, ch, used, th}
"""
)

CHARGE_LUA: Final = (
    _COMMON
    + """
-- KEYS: token log, token total; ARGV: tokens, token window us, id
local now = now_us()
local tw = tonumber(ARGV[2])
local used = live_tokens(KEYS[1], KEYS[2], now - tw)
redis.call('ZADD', KEYS[1], s(now), ARGV[3] .. ':' .. ARGV[1])
redis.call('SET', KEYS[2], s(used + tonumber(ARGV[1])))
redis.call('PEXPIRE', KEYS[1], s(math.ceil(tw / 1000)))
redis.call('PEXPIRE', KEYS[2], s(math.ceil(tw / 1000)))
return used + tonumber(ARGV[1])
"""
)

ACQUIRE_LUA: Final = (
    _COMMON
    + """
-- KEYS: lease set; ARGV: limit, lease ttl us, lease id. Leases are scored by their expiry.
local now = now_us()
local limit, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', s(now))
local held = redis.call('ZCARD', KEYS[1])
local h = head(KEYS[1], math.max(1, held - limit + 1), now)
if held < limit then
  redis.call('ZADD', KEYS[1], s(now + ttl), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], s(math.ceil(ttl / 1000)))
end
return {held, h}
"""
)

RENEW_LUA: Final = (
    _COMMON
    + """
-- KEYS: lease set; ARGV: limit, lease ttl us, lease id. A lapsed lease is re-taken only if free.
local now = now_us()
local limit, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', s(now))
if redis.call('ZSCORE', KEYS[1], ARGV[3]) or redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], s(now + ttl), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], s(math.ceil(ttl / 1000)))
  return 1
end
return 0
"""
)


def _seconds(rel_us: Sequence[Any]) -> list[float]:
    return [int(v) / _US for v in rel_us]


class RedisLimiter:
    """Exact limits across replicas; fails closed (LimiterUnavailable) or open in `timeout_s`."""

    def __init__(
        self,
        config: LimitsConfig,
        url: str,
        *,
        prefix: str = "gw",
        timeout_s: float = 0.25,
        fail_open: bool = False,
        max_connections: int = 64,
    ) -> None:
        if timeout_s <= 0 or max_connections <= 0:
            raise ValueError("timeout_s and max_connections must be positive")
        self._config = config
        self._prefix = prefix
        self._timeout_s = timeout_s
        self._fail_open = fail_open
        # A bounded pool that waits at most timeout_s for a connection, and no client retries:
        # the per-call deadline is the only latency a request can add.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout_s,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        self._redis = aioredis.Redis(connection_pool=pool)
        self._admit = self._redis.register_script(ADMIT_LUA)
        self._charge = self._redis.register_script(CHARGE_LUA)
        self._acquire = self._redis.register_script(ACQUIRE_LUA)
        self._renew = self._redis.register_script(RENEW_LUA)
        self._warned_at = -_WARN_EVERY_S

    def _key(self, company_id: str, kind: str, user_id: str | None = None) -> str:
        # Ids come from claims: quote them so `{`, `}` and `:` cannot break the hash tag.
        tag = f"{self._prefix}:{{{quote(company_id, safe='')}}}:{kind}"
        return tag if user_id is None else f"{tag}:{quote(user_id, safe='')}"

    async def _call(self, what: str, work: Callable[[], Awaitable[T]]) -> T:
        try:
            async with asyncio.timeout(self._timeout_s):
                return await work()
        except (RedisError, OSError, TimeoutError) as exc:
            now = time.monotonic()
            if now - self._warned_at >= _WARN_EVERY_S:
                self._warned_at = now
                log.warning(
                    "redis limiter %s failed (fail_open=%s): %r", what, self._fail_open, exc
                )
            raise LimiterUnavailable() from exc

    async def admit(self, principal: Principal) -> list[LimitDecision]:
        """Consume one request of the user and company windows unless any policy denies."""
        cfg, company = self._config, principal.company_id
        keys = [
            self._key(company, "u", principal.user_id),
            self._key(company, "c"),
            self._key(company, "t"),
            self._key(company, "tt"),
        ]
        args: list[Arg] = [
            cfg.user_requests,
            cfg.user_window_s * _US,
            cfg.company_requests,
            cfg.company_window_s * _US,
            cfg.company_tokens,
            cfg.company_token_window_s * _US,
            uuid.uuid4().hex,
        ]
        try:
            raw = await self._call("admit", lambda: self._admit(keys=keys, args=args))
        except LimiterUnavailable:
            if self._fail_open:
                return []  # unknown state: no decisions, so no RateLimit headers either
            raise
        user_used, user_head, company_used, company_head, tokens_used, token_head = raw
        return admit_decisions(
            cfg,
            now=0.0,
            user=_seconds(user_head),
            user_used=int(user_used),
            company=_seconds(company_head),
            company_used=int(company_used),
            charges=[(int(rel) / _US, int(n)) for rel, n in token_head],
            tokens_used=int(tokens_used),
        )

    async def acquire_stream(self, principal: Principal) -> Lease | LimitDecision:
        """Hold one of the user's stream slots, or return the denial."""
        lease = Lease(self._key(principal.company_id, "s", principal.user_id), uuid.uuid4().hex)
        args: list[Arg] = [
            self._config.user_streams,
            int(self._config.lease_ttl_s * _US),
            lease.lease_id,
        ]
        try:
            held, head = await self._call(
                "acquire", lambda: self._acquire(keys=[lease.key], args=args)
            )
        except LimiterUnavailable:
            if self._fail_open:
                return lease  # unrecorded; releasing it later is a harmless no-op
            raise
        decision = lease_decision(
            _seconds(head), held=int(held), now=0.0, limit=self._config.user_streams
        )
        return lease if decision.allowed else decision

    async def renew(self, lease: Lease) -> None:
        """Extend a live lease; failures are logged, the lease TTL is the backstop."""
        args: list[Arg] = [
            self._config.user_streams,
            int(self._config.lease_ttl_s * _US),
            lease.lease_id,
        ]
        with contextlib.suppress(LimiterUnavailable):
            await self._call("renew", lambda: self._renew(keys=[lease.key], args=args))

    async def release(self, lease: Lease) -> None:
        """Free the slot; idempotent, and a failure only delays the slot until the lease TTL."""
        with contextlib.suppress(LimiterUnavailable):
            await self._call("release", lambda: self._redis.zrem(lease.key, lease.lease_id))

    async def charge_tokens(self, principal: Principal, tokens: int) -> None:
        """Post-pay model tokens; a charge lost to an outage is logged, never raised."""
        check_tokens(tokens)
        if tokens == 0:
            return
        keys = [self._key(principal.company_id, "t"), self._key(principal.company_id, "tt")]
        args: list[Arg] = [tokens, self._config.company_token_window_s * _US, uuid.uuid4().hex]
        with contextlib.suppress(LimiterUnavailable):
            await self._call("charge", lambda: self._charge(keys=keys, args=args))

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()
        await self._redis.connection_pool.disconnect()
