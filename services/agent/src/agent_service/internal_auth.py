"""Verification of the internal tokens callers present: issuer allow-list, a key per issuer.

Pure: `verify_internal_token` takes the token, the issuer keys, the request it came with and a
clock, and returns the identity or raises `Unauthorized`. The algorithm comes from the issuer's
key, never from the token. A token bound to a request (`htm`, `htu`) is refused on any other;
`SeenTokens` accepts each bound token's `jti` once per process, so a captured one cannot be
replayed here.
"""

from __future__ import annotations

import functools
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from agent_service.errors import Unauthorized
from contracts.internal_token import INTERNAL_AUDIENCE, MAX_INTERNAL_TTL_S

_REQUIRED = ["exp", "iat", "iss", "aud", "sub", "company_id"]


@dataclass(frozen=True, slots=True)
class InternalIdentity:
    issuer: str
    user_id: str
    company_id: str
    request_id: str | None
    token_id: str | None = None
    """The token's `jti`, for `SeenTokens`."""
    expires_at: float = 0.0
    bound: bool = False
    """The token names its request (`htm`, `htu`): one token per call, so it is used once."""


class SeenTokens:
    """The `jti`s accepted within their tokens' lifetime: a second use is a replay. Bounded: past
    `max_entries` live tokens the oldest are forgotten (a replay of those is then only stopped by
    the request binding and the expiry)."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._expiry: OrderedDict[str, float] = OrderedDict()
        self._max = max_entries

    def __len__(self) -> int:
        return len(self._expiry)

    def first_use(self, identity: InternalIdentity, now: float, leeway_s: float) -> bool:
        """Record the identity's bound token; False if it was seen before (unbound tokens, which
        a developer or another service may reuse for their minute, and tokens without a `jti` are
        not tracked)."""
        if identity.token_id is None or not identity.bound:
            return True
        key = f"{identity.issuer}\0{identity.token_id}"
        expiry = self._expiry
        if key in expiry and expiry[key] >= now:
            return False
        while expiry:
            oldest, until = next(iter(expiry.items()))
            if until >= now and len(expiry) < self._max:
                break
            del expiry[oldest]
        expiry[key] = identity.expires_at + leeway_s
        return True


def check_binding(claims: Mapping[str, Any], method: str | None, path: str | None) -> None:
    """Refuse a token bound to another request than `method path` (unbound tokens pass)."""
    bound_method, bound_path = claims.get("htm"), claims.get("htu")
    if bound_method is None and bound_path is None:
        return
    if method is None or path is None:
        raise Unauthorized("token is bound to a request")
    if bound_method != method.upper() or bound_path != path:
        raise Unauthorized("token is bound to another request")


@functools.lru_cache(maxsize=64)
def algorithm_for_key(key: str) -> str:
    """HS256 for a shared secret; ES256 or EdDSA for a PEM public key (decided by its type)."""
    if "-----BEGIN" not in key:
        return "HS256"
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    public = load_pem_public_key(key.encode())
    if isinstance(public, ec.EllipticCurvePublicKey):
        return "ES256"
    if isinstance(public, ed25519.Ed25519PublicKey):
        return "EdDSA"
    raise ValueError("internal issuer keys must be HS256 secrets or EC P-256 / Ed25519 public keys")


def bearer_token(header: str | None) -> str:
    if not header:
        raise Unauthorized("missing bearer token")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token or " " in token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    return token.strip()


def verify_internal_token(
    token: str,
    issuers: Mapping[str, str],
    *,
    leeway_s: int = 5,
    max_bytes: int = 4096,
    now: float | None = None,
    method: str | None = None,
    path: str | None = None,
) -> InternalIdentity:
    """Return the verified identity, or raise `Unauthorized` with a reason safe to return; a
    token bound to a request must come with that `method` and `path`."""
    if len(token) > max_bytes:
        raise Unauthorized("token too large")
    try:
        # header and claims from one parse (the signature is checked below, with the key)
        parsed = jwt.decode_complete(token, options={"verify_signature": False})
        unverified: dict[str, Any] = parsed["payload"]
        header: dict[str, Any] = parsed["header"]
    except jwt.PyJWTError:
        raise Unauthorized("malformed token") from None
    issuer = unverified.get("iss")
    if not isinstance(issuer, str) or issuer not in issuers:
        raise Unauthorized("unknown token issuer")
    key = issuers[issuer]
    algorithm = algorithm_for_key(key)
    if header.get("alg") != algorithm:
        raise Unauthorized("token algorithm not allowed for this issuer")
    current = time.time() if now is None else now
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=INTERNAL_AUDIENCE,
            issuer=issuer,
            leeway=leeway_s,
            options={"require": _REQUIRED, "verify_iat": True},
            # pyjwt reads the clock itself; pass ours through the leeway-free check below
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired") from None
    except jwt.InvalidAudienceError:
        raise Unauthorized("token audience is not this service") from None
    except jwt.MissingRequiredClaimError as exc:
        raise Unauthorized(f"token lacks the {exc.claim!r} claim") from None
    except jwt.PyJWTError:
        raise Unauthorized("invalid token") from None
    exp, iat = claims["exp"], claims["iat"]
    if not isinstance(exp, int | float) or not isinstance(iat, int | float):
        raise Unauthorized("invalid token times")
    if exp - iat > MAX_INTERNAL_TTL_S:
        raise Unauthorized(f"internal tokens may live at most {MAX_INTERNAL_TTL_S} s")
    if exp + leeway_s < current:
        raise Unauthorized("token expired")
    sub, company = claims["sub"], claims["company_id"]
    if not isinstance(sub, str) or not sub or not isinstance(company, str) or not company:
        raise Unauthorized("token subject and company must be non-empty strings")
    check_binding(claims, method, path)
    request_id, token_id = claims.get("request_id"), claims.get("jti")
    return InternalIdentity(
        issuer=issuer,
        user_id=sub,
        company_id=company,
        request_id=request_id if isinstance(request_id, str) else None,
        token_id=token_id if isinstance(token_id, str) and token_id else None,
        expires_at=float(exp),
        bound="htm" in claims or "htu" in claims,
    )
