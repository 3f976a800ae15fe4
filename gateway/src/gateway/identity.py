"""The identity the agent is told about: a verified principal's ids in the contract's id format.

Identity providers issue subjects the internal contract's id pattern does not allow (Auth0's
`auth0|abc`, emails with `+`, ids past 128 characters). Those are mapped to a stable safe id, so
the same user (or company) always reaches the agent as the same id and keeps its conversations.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from contracts.agent_api import ID_PATTERN, MAX_ID_CHARS
from contracts.client import Identity
from gateway.auth import Principal

MAPPED_PREFIX: Final = "h-"
MAPPED_HEX_CHARS: Final = 40
"""160 bits of SHA-256: collisions are out of reach; `h-` + 40 fits `MAX_ID_CHARS` easily."""
_FITS: Final = re.compile(ID_PATTERN)
_MAPPED_FORM: Final = re.compile(rf"{MAPPED_PREFIX}[0-9a-f]{{{MAPPED_HEX_CHARS}}}")


def contract_id(claim: str) -> str:
    """`claim` unchanged when it is a valid contract id, else `h-` + the first 40 hex digits of
    its SHA-256 (an id already in that form is mapped too, so no two claims share an id)."""
    if len(claim) <= MAX_ID_CHARS and _FITS.fullmatch(claim) and not _MAPPED_FORM.fullmatch(claim):
        return claim
    digest = hashlib.sha256(claim.encode("utf-8", "surrogatepass")).hexdigest()
    return MAPPED_PREFIX + digest[:MAPPED_HEX_CHARS]


def upstream_identity(principal: Principal) -> Identity:
    """The user and company the agent sees for a verified principal (the only mapping)."""
    return Identity(
        user_id=contract_id(principal.user_id), company_id=contract_id(principal.company_id)
    )
