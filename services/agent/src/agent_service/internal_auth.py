"""Verification of the internal tokens callers present: issuer allow-list, a key per issuer.

Pure: `verify_internal_token` takes the token, the issuer keys and a clock, and returns the
identity or raises `Unauthorized`. The algorithm comes from the issuer's key, never from the token.
"""

from __future__ import annotations

import functools
import time
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
) -> InternalIdentity:
    """Return the verified identity, or raise `Unauthorized` with a reason safe to return."""
    if len(token) > max_bytes:
        raise Unauthorized("token too large")
    try:
        unverified: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
        header = jwt.get_unverified_header(token)
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
    request_id = claims.get("request_id")
    return InternalIdentity(
        issuer=issuer,
        user_id=sub,
        company_id=company,
        request_id=request_id if isinstance(request_id, str) else None,
    )
