"""An async JWKS cache: TTL, refresh-ahead, stale-if-error, single-flight, unknown-kid cooldown."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any, Final

import aiohttp
import jwt
from jwt import PyJWK

log = logging.getLogger(__name__)

REFRESH_AHEAD: Final = 0.8
"""Past this share of the TTL a request starts a background refresh; the hot path rarely waits."""
_EC_ALGORITHMS: Final = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
_RSA_ALGORITHMS: Final = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})


class JwksUnavailable(Exception):
    """No usable key set: the cache is cold or past stale-if-error and the JWKS cannot be had."""


def key_algorithm(jwk: Mapping[str, Any]) -> str | None:
    """The one algorithm a public JWK is bound to; None for symmetric, private or unusable keys."""
    kty, alg, crv = jwk.get("kty"), jwk.get("alg"), jwk.get("crv")
    # A symmetric or private key in a public key set is a misconfiguration; never verify with it.
    if kty not in ("RSA", "EC", "OKP") or "d" in jwk or jwk.get("use", "sig") != "sig":
        return None
    if kty == "RSA":
        inferred = alg if alg in _RSA_ALGORITHMS else None
        return inferred if alg is not None else "RS256"
    if kty == "EC":
        curve_alg = _EC_ALGORITHMS.get(crv) if isinstance(crv, str) else None
        return curve_alg if alg in (None, curve_alg) else None
    return "EdDSA" if crv in ("Ed25519", "Ed448") and alg in (None, "EdDSA") else None


def parse_jwks(
    body: bytes, *, algorithms: Collection[str], max_keys: int, max_kid_chars: int
) -> dict[str, PyJWK]:
    """Return the usable verification keys of a JWKS document by kid; ValueError when none are."""
    document = json.loads(body)
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("JWKS document has no keys list")
    keys: dict[str, PyJWK] = {}
    for entry in document["keys"]:
        if len(keys) >= max_keys:
            log.warning("jwks has more than %d usable keys; the rest are ignored", max_keys)
            break
        if not isinstance(entry, dict):
            continue
        kid = entry.get("kid")
        alg = key_algorithm(entry)
        if not isinstance(kid, str) or not 0 < len(kid) <= max_kid_chars or kid in keys:
            continue
        if alg is None or alg not in algorithms:
            continue
        try:
            keys[kid] = PyJWK(entry, algorithm=alg)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
            log.warning("jwks key %r skipped: %s", kid, exc)
    if not keys:
        raise ValueError("JWKS document has no usable keys")
    return keys


class JwksCache:
    """Keys by kid from one JWKS URL; never blocks the event loop and never fetches per request."""

    def __init__(
        self,
        url: str,
        *,
        algorithms: Collection[str],
        session: aiohttp.ClientSession | None = None,
        ttl_s: float = 300,
        stale_if_error_s: float = 3600,
        unknown_kid_cooldown_s: float = 30,
        error_backoff_s: float = 5,
        timeout_s: float = 3,
        max_keys: int = 20,
        max_bytes: int = 65536,
        max_kid_chars: int = 128,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._algorithms = algorithms
        self._session = session
        self._owns_session = session is None
        self._ttl_s = ttl_s
        self._stale_if_error_s = stale_if_error_s
        self._cooldown_s = unknown_kid_cooldown_s
        self._backoff_s = error_backoff_s
        self._timeout_s = timeout_s
        self._max_keys = max_keys
        self._max_bytes = max_bytes
        self._max_kid_chars = max_kid_chars
        self._clock = clock
        self._keys: dict[str, PyJWK] | None = None
        self._fetched_at = 0.0
        self._failed_at: float | None = None
        self._unknown_kid_at: float | None = None
        self._inflight: asyncio.Task[None] | None = None
        self.fetches = 0
        """Fetches started since construction (for metrics and tests)."""
        self.last_error: str | None = None

    async def start(self) -> None:
        """Fetch once so the first request finds warm keys; failures are logged, not raised."""
        await self._refresh()
        if self._keys is None:
            log.warning("jwks pre-warm failed (%s); will retry on demand", self.last_error)

    async def close(self) -> None:
        """Cancel an in-flight fetch and close the session if this cache created it."""
        task, self._inflight = self._inflight, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _backing_off(self, now: float) -> bool:
        return self._failed_at is not None and now - self._failed_at < self._backoff_s

    def _usable(self, now: float) -> dict[str, PyJWK] | None:
        if self._keys is None or now - self._fetched_at >= self._ttl_s + self._stale_if_error_s:
            return None
        return self._keys

    async def get_key(self, kid: str) -> PyJWK | None:
        """The key for `kid`, None if the set lacks it; JwksUnavailable when there is no set."""
        now = self._clock()
        refreshed = False
        expired = self._keys is None or now - self._fetched_at >= self._ttl_s
        if expired and not self._backing_off(now):
            await self._refresh()
            refreshed, now = True, self._clock()
        keys = self._usable(now)
        if keys is None:
            raise JwksUnavailable(self.last_error or "no JWKS fetched yet")
        if now - self._fetched_at >= self._ttl_s * REFRESH_AHEAD and not self._backing_off(now):
            self._spawn_refresh()
        key = keys.get(kid)
        if key is not None or refreshed or self._backing_off(now):
            return key
        # An unknown kid may be a freshly rotated key: refetch once, then stay quiet for the
        # cooldown so a stream of random kids cannot turn into a stream of fetches.
        if self._unknown_kid_at is not None and now - self._unknown_kid_at < self._cooldown_s:
            return None
        self._unknown_kid_at = now
        await self._refresh()
        keys = self._usable(self._clock())
        return keys.get(kid) if keys is not None else None

    def _spawn_refresh(self) -> asyncio.Task[None]:
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.create_task(self._fetch_and_store(), name="jwks-refresh")
        return self._inflight

    async def _refresh(self) -> None:
        # Every caller joins the one in-flight fetch; shield so a cancelled caller does not
        # cancel the fetch the others are waiting on.
        await asyncio.shield(self._spawn_refresh())

    async def _fetch_and_store(self) -> None:
        self.fetches += 1
        try:
            body = await self._download()
            keys = parse_jwks(
                body,
                algorithms=self._algorithms,
                max_keys=self._max_keys,
                max_kid_chars=self._max_kid_chars,
            )
        except (aiohttp.ClientError, TimeoutError, ValueError, RecursionError) as exc:
            self._failed_at = self._clock()
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("jwks fetch from %s failed: %s", self._url, self.last_error)
            return
        self._keys, self._fetched_at = keys, self._clock()
        self._failed_at, self.last_error = None, None

    async def _download(self) -> bytes:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with asyncio.timeout(self._timeout_s):
            async with self._session.get(
                self._url,
                allow_redirects=False,
                headers={"Accept": "application/json"},
                timeout=aiohttp.ClientTimeout(total=self._timeout_s),
            ) as resp:
                if resp.status != 200:
                    raise ValueError(f"JWKS answered HTTP {resp.status}")
                if resp.content_length is not None and resp.content_length > self._max_bytes:
                    raise ValueError(f"JWKS document exceeds {self._max_bytes} bytes")
                body = bytearray()
                async for chunk in resp.content.iter_chunked(16384):
                    body += chunk
                    if len(body) > self._max_bytes:
                        raise ValueError(f"JWKS document exceeds {self._max_bytes} bytes")
                return bytes(body)
