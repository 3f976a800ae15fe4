"""The short-lived internal token a caller presents to the agent service.

The gateway (or any other internal service with its own issuer name and key) mints one per upstream
call. The agent service verifies it against its issuer allow-list; see
`agent_service.internal_auth`. A token is bound to its request: `htm` and `htu` name the method and
path it was minted for (the agent refuses it on any other), and its `jti` is accepted once.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Final, Literal

import jwt

INTERNAL_AUDIENCE: Final = "agent-service"
MAX_INTERNAL_TTL_S: Final = 60
"""The agent service refuses internal tokens that live longer than this."""
InternalAlgorithm = Literal["HS256", "ES256", "EdDSA"]


@dataclass(frozen=True, slots=True)
class RequestBinding:
    """The one request a token is for: its method and path (`/internal/...`, no query)."""

    method: str
    path: str


def mint_internal_token(
    *,
    issuer: str,
    key: str,
    user_id: str,
    company_id: str,
    request_id: str | None = None,
    ttl_s: int = 30,
    algorithm: InternalAlgorithm = "HS256",
    now: float | None = None,
    binding: RequestBinding | None = None,
) -> str:
    """Sign a token carrying the verified identity, bound to `binding`'s request when given;
    `key`: an HS256 secret or a PEM private key."""
    if not 0 < ttl_s <= MAX_INTERNAL_TTL_S:
        raise ValueError(f"ttl_s must be in 1..{MAX_INTERNAL_TTL_S}")
    issued = int(now if now is not None else time.time())
    claims: dict[str, object] = {
        "iss": issuer,
        "aud": INTERNAL_AUDIENCE,
        "sub": user_id,
        "company_id": company_id,
        "iat": issued,
        "exp": issued + ttl_s,
        "jti": uuid.uuid4().hex,
    }
    if request_id:
        claims["request_id"] = request_id
    if binding is not None:
        claims["htm"] = binding.method.upper()
        claims["htu"] = binding.path
    return jwt.encode(claims, key, algorithm=algorithm, headers={"typ": "JWT"})
