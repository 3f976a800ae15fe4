"""Bearer JWT verification: allow-listed algorithms bound to keys, required claims, identity."""

from __future__ import annotations

import logging
import math
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import jwt
from jwt import PyJWK

from gateway.errors import Unauthorized, UpstreamUnavailable
from gateway.jwks import JwksCache, JwksUnavailable

log = logging.getLogger(__name__)

HMAC_ALGORITHMS: Final = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC_ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
MIN_HMAC_SECRET_BYTES: Final = 32
"""RFC 8725 §3.5: an HMAC key needs at least as many bytes of entropy as the hash output."""
ACCEPTED_TYPES: Final = frozenset({"jwt", "at+jwt", "application/at+jwt"})
"""An explicit `typ` must name an access token (RFC 8725 §3.11): ID/refresh tokens are refused."""
REGISTERED_CLAIMS: Final = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "jti"})
_BEARER = re.compile(r"Bearer ([A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified caller: identity taken from signed claims only."""

    user_id: str
    company_id: str
    issuer: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class JwtConfig:
    """How user tokens are verified; construction refuses unsafe or contradictory settings."""

    issuer: str
    audience: str
    tenant_claim: str = "company_id"
    leeway_s: int = 30
    hs256_secret: str | None = None
    jwks_url: str | None = None
    algorithms: tuple[str, ...] = ("HS256",)
    max_token_bytes: int = 8192
    jwks_ttl_s: float = 300
    jwks_unknown_kid_cooldown_s: float = 30
    jwks_timeout_s: float = 3
    jwks_max_keys: int = 20
    jwks_max_bytes: int = 65536
    # additive to the agreed interface:
    jwks_stale_if_error_s: float = 3600
    jwks_error_backoff_s: float = 5
    max_id_chars: int = 256
    max_kid_chars: int = 128
    max_lifetime_s: int = 86_400
    """Longest accepted `exp - iat` (and `exp - now`): a token that claims to live longer is
    refused, whatever signed it."""
    verified_cache_size: int = 4096
    """Tokens whose signature and claims were verified, remembered (least recently used out)
    so that a client's next request with the same token skips the parse and the signature
    check; its time window is still checked on every request. 0 turns it off."""

    def __post_init__(self) -> None:
        problems = config_problems(self)
        if problems:
            raise ValueError("invalid JWT configuration: " + "; ".join(problems))


def config_problems(config: JwtConfig) -> list[str]:
    """List every reason `config` is unusable; empty when it is sound."""
    problems: list[str] = []
    if not config.issuer or not config.audience:
        problems.append("issuer and audience must be non-empty")
    if not config.tenant_claim or config.tenant_claim in REGISTERED_CLAIMS:
        problems.append("tenant_claim must be a non-registered claim name")
    if not config.algorithms:
        problems.append("algorithms must not be empty")
    unknown = set(config.algorithms) - HMAC_ALGORITHMS - ASYMMETRIC_ALGORITHMS
    if unknown:
        problems.append(f"unsupported algorithms: {sorted(unknown)}")
    hmac = HMAC_ALGORITHMS.intersection(config.algorithms)
    asym = ASYMMETRIC_ALGORITHMS.intersection(config.algorithms)
    if hmac and config.hs256_secret is None:
        problems.append("HS* algorithms need hs256_secret")
    if hmac and config.jwks_url is not None:
        problems.append("HS* algorithms cannot be combined with jwks_url (one key per algorithm)")
    if asym and config.jwks_url is None:
        problems.append("asymmetric algorithms need jwks_url")
    secret = config.hs256_secret
    if secret is not None and len(secret.encode()) < MIN_HMAC_SECRET_BYTES:
        problems.append(f"hs256_secret must be at least {MIN_HMAC_SECRET_BYTES} bytes")
    if config.jwks_url is not None and not config.jwks_url.startswith(("https://", "http://")):
        problems.append("jwks_url must be an http(s) URL")
    numbers = {
        "leeway_s": config.leeway_s >= 0,
        "max_token_bytes": config.max_token_bytes > 0,
        "jwks_ttl_s": config.jwks_ttl_s > 0,
        "jwks_unknown_kid_cooldown_s": config.jwks_unknown_kid_cooldown_s >= 0,
        "jwks_timeout_s": config.jwks_timeout_s > 0,
        "jwks_max_keys": config.jwks_max_keys > 0,
        "jwks_max_bytes": config.jwks_max_bytes > 0,
        "jwks_stale_if_error_s": config.jwks_stale_if_error_s >= 0,
        "jwks_error_backoff_s": config.jwks_error_backoff_s >= 0,
        "max_id_chars": config.max_id_chars > 0,
        "max_lifetime_s": config.max_lifetime_s > 0,
        "verified_cache_size": config.verified_cache_size >= 0,
        "max_kid_chars": config.max_kid_chars > 0,
    }
    problems.extend(f"{name} is out of range" for name, ok in numbers.items() if not ok)
    return problems


class AuthError(Unauthorized):
    """The request's credentials were refused (401); `message` is safe to show the caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class AuthUnavailable(UpstreamUnavailable):
    """No keys to verify with (JWKS down, cache cold or expired): a retryable 503, not the
    caller's fault."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


def bearer_token(authorization_header: str | None) -> str | None:
    """Return the token of a well-formed `Bearer <token>` header, else None."""
    if authorization_header is None:
        return None
    match = _BEARER.fullmatch(authorization_header)
    return match.group(1) if match else None


def parse_header(token: str, config: JwtConfig) -> dict[str, Any]:
    """Check size, shape, `alg`, `typ` and `kid` of an unverified token; return its header."""
    if not token.isascii():
        raise AuthError("token is malformed")
    if len(token) > config.max_token_bytes:
        raise AuthError("token is too large")
    if token.count(".") != 2:
        raise AuthError("token is malformed")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise AuthError("token is malformed") from None
    alg = header.get("alg")
    # The allow-list is ours (RFC 8725 §3.1): "none" and anything unlisted never reach a verifier.
    if not isinstance(alg, str) or alg not in config.algorithms:
        raise AuthError("token algorithm is not allowed")
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.lower() not in ACCEPTED_TYPES):
        raise AuthError("token type is not accepted")
    if config.jwks_url is not None:
        kid = header.get("kid")
        if not isinstance(kid, str) or not 0 < len(kid) <= config.max_kid_chars:
            raise AuthError("token key id is missing or invalid")
    return header


def _identity(claims: Mapping[str, Any], name: str, config: JwtConfig) -> str:
    value = claims.get(name)
    if value is None:
        raise AuthError(f"token is missing the {name} claim")
    if not isinstance(value, str) or not value.strip():
        raise AuthError(f"token {name} claim must be a non-empty string")
    if len(value) > config.max_id_chars or _CONTROL.search(value):
        raise AuthError(f"token {name} claim is invalid")
    return value


def _instant(claims: Mapping[str, Any], name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise AuthError(f"token is missing the {name} claim")
        return None
    # bool is an int subclass; `"exp": true` must not read as 1970-01-01T00:00:01.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AuthError(f"token {name} claim must be a number")
    instant = float(value) if abs(value) < 1e15 else math.inf  # a huge int overflows float()
    # NaN and infinity (`1e400` parses as inf): a date that never comes is no date.
    if not math.isfinite(instant):
        raise AuthError(f"token {name} claim must be a finite number")
    return instant


def principal_from_claims(claims: Mapping[str, Any], config: JwtConfig, now: float) -> Principal:
    """Check the time window and identity claims of a signature-verified payload at `now`."""
    exp = _instant(claims, "exp", required=True)
    iat = _instant(claims, "iat", required=True)
    nbf = _instant(claims, "nbf", required=False)
    assert exp is not None  # required=True raised otherwise
    assert iat is not None
    leeway = config.leeway_s
    if exp <= now - leeway:
        raise AuthError("token has expired")
    if iat > now + leeway or (nbf is not None and nbf > now + leeway):
        raise AuthError("token is not yet valid")
    if exp - iat > config.max_lifetime_s or exp - now > config.max_lifetime_s + leeway:
        raise AuthError("token lifetime is longer than accepted")
    issuer = claims.get("iss")
    if issuer != config.issuer:
        raise AuthError("token issuer is not accepted")
    user_id = _identity(claims, "sub", config)
    company_id = _identity(claims, config.tenant_claim, config)
    return Principal(user_id=user_id, company_id=company_id, issuer=config.issuer, expires_at=exp)


def _decode_error(exc: jwt.PyJWTError) -> AuthError:
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return AuthError(f"token is missing the {exc.claim} claim")
    messages: list[tuple[type[jwt.PyJWTError], str]] = [
        (jwt.InvalidAudienceError, "token audience is not accepted"),
        (jwt.InvalidIssuerError, "token issuer is not accepted"),
        (jwt.InvalidSignatureError, "token signature is invalid"),
        (jwt.InvalidAlgorithmError, "token algorithm is not allowed"),
        (jwt.exceptions.InvalidSubjectError, "token sub claim must be a non-empty string"),
        (jwt.DecodeError, "token is malformed"),
    ]
    for kind, message in messages:
        if isinstance(exc, kind):
            return AuthError(message)
    return AuthError("token is invalid")


class JwtVerifier:
    """Verify user bearer tokens; key material comes from the secret or the async JWKS cache."""

    def __init__(
        self,
        config: JwtConfig,
        *,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._clock = clock
        # Time checks are ours (injectable clock); signature, iss and aud stay with PyJWT too.
        self._jwt = jwt.PyJWT(
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "require": ["iss", "aud", "sub"],
                "enforce_minimum_key_length": True,
            }
        )
        self._verified: OrderedDict[str, tuple[Mapping[str, Any], str, str, PyJWK | None]] = (
            OrderedDict()
        )
        """token → (claims, kid, alg, JWKS key): see `verify`."""
        self._jwks: JwksCache | None = None
        if config.jwks_url is not None:
            self._jwks = JwksCache(
                config.jwks_url,
                algorithms=frozenset(config.algorithms),
                session=session,
                ttl_s=config.jwks_ttl_s,
                stale_if_error_s=config.jwks_stale_if_error_s,
                unknown_kid_cooldown_s=config.jwks_unknown_kid_cooldown_s,
                error_backoff_s=config.jwks_error_backoff_s,
                timeout_s=config.jwks_timeout_s,
                max_keys=config.jwks_max_keys,
                max_bytes=config.jwks_max_bytes,
                max_kid_chars=config.max_kid_chars,
                clock=monotonic,
            )

    @property
    def jwks(self) -> JwksCache | None:
        """The key cache in JWKS mode (for metrics and readiness), else None."""
        return self._jwks

    async def start(self) -> None:
        """Pre-warm the JWKS cache; a JWKS outage is logged, never fatal to startup."""
        if self._jwks is not None:
            await self._jwks.start()

    async def close(self) -> None:
        """Stop background refreshes and close an owned HTTP session."""
        if self._jwks is not None:
            await self._jwks.close()

    async def verify(self, token: str) -> Principal:
        """The principal of a valid token; raises AuthError (401) or AuthUnavailable (503).

        A token verified before is taken from the cache (`JwtConfig.verified_cache_size`): the
        same string is the same signed header and claims, so only what can change since is
        checked again: the time window, and in JWKS mode that its key is still the one served
        (a key rotated out refuses it as before)."""
        remembered = self._verified.get(token)
        if remembered is not None:
            claims, kid, alg, key = remembered
            if key is None or await self._public_key(kid, alg) is key:
                if token in self._verified:  # others ran while the key set was awaited
                    self._verified.move_to_end(token)
                return principal_from_claims(claims, self._config, self._clock())
            self._verified.pop(token, None)  # the key set changed: verify it again
        return self._remember(token, *await self._verify(token))

    def _remember(
        self, token: str, claims: Mapping[str, Any], kid: str, alg: str, key: PyJWK | None
    ) -> Principal:
        principal = principal_from_claims(claims, self._config, self._clock())
        size = self._config.verified_cache_size
        if size:
            self._verified[token] = (claims, kid, alg, key)
            while len(self._verified) > size:
                self._verified.popitem(last=False)
        return principal

    async def _verify(self, token: str) -> tuple[Mapping[str, Any], str, str, PyJWK | None]:
        """Check the token in full: its claims, the key id and algorithm it was checked with,
        and the JWKS key (None for a shared secret)."""
        header = parse_header(token, self._config)
        alg: str = header["alg"]
        key: str | PyJWK
        if alg in HMAC_ALGORITHMS:
            assert self._config.hs256_secret is not None  # config_problems guarantees it
            key = self._config.hs256_secret
        else:
            key = await self._public_key(header["kid"], alg)
        try:
            claims = self._jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self._config.audience,
                issuer=self._config.issuer,
            )
        except jwt.PyJWTError as exc:
            raise _decode_error(exc) from None
        return claims, header.get("kid", ""), alg, None if isinstance(key, str) else key

    async def _public_key(self, kid: str, alg: str) -> PyJWK:
        assert self._jwks is not None  # asymmetric algorithms are only allowed with jwks_url
        try:
            key = await self._jwks.get_key(kid)
        except JwksUnavailable as exc:
            log.warning("jwks unavailable: %s", exc)
            raise AuthUnavailable("token keys are temporarily unavailable") from None
        if key is None:
            raise AuthError("token key id is not known")
        # The key fixes the algorithm; a header naming another one is refused, not obeyed.
        if key.algorithm_name != alg:
            raise AuthError("token algorithm does not match its key")
        return key


def mint_dev_token(
    config: JwtConfig,
    *,
    user_id: str,
    company_id: str,
    ttl_s: int = 3600,
    now: float | None = None,
) -> str:
    """Sign an HS256 user token for development; refuses configs without an HS256 secret."""
    if config.hs256_secret is None or "HS256" not in config.algorithms:
        raise ValueError("mint_dev_token needs a config with hs256_secret and HS256 allowed")
    if ttl_s <= 0:
        raise ValueError("ttl_s must be positive")
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": config.issuer,
        "aud": config.audience,
        "sub": user_id,
        config.tenant_claim: company_id,
        "iat": issued,
        "exp": issued + ttl_s,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, config.hs256_secret, algorithm="HS256", headers={"typ": "JWT"})
