"""The verifier in development (HS256) mode against the JWT attack cases, with an injected clock."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import random
import string
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from gateway.auth import AuthError, JwtConfig, JwtVerifier, Principal, mint_dev_token

SECRET = "development-secret-of-at-least-32-bytes!"
NOW = 1_700_000_000.0
CONFIG = JwtConfig(issuer="https://issuer.test", audience="chat", hs256_secret=SECRET)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": "https://issuer.test",
        "aud": "chat",
        "sub": "user-1",
        "company_id": "company-1",
        "iat": int(NOW) - 5,
        "exp": int(NOW) + 300,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def sign(payload: dict[str, Any], *, key: str = SECRET, alg: str = "HS256", **headers: Any) -> str:
    return jwt.encode(payload, key, algorithm=alg, headers=headers or None)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def verify(clock: Clock) -> Callable[..., Any]:
    def run(token: str, config: JwtConfig = CONFIG) -> Any:
        return JwtVerifier(config, clock=clock).verify(token)

    return run


async def refused(verify: Callable[..., Any], token: str, match: str | None = None) -> AuthError:
    with pytest.raises(AuthError, match=match) as caught:
        await verify(token)
    assert caught.value.status == 401
    return caught.value


async def test_valid_token_yields_the_principal_from_claims(verify: Callable[..., Any]) -> None:
    principal = await verify(sign(claims()))
    assert principal == Principal("user-1", "company-1", "https://issuer.test", NOW + 300)


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
async def test_alg_none_is_refused(verify: Callable[..., Any], alg: str) -> None:
    header = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64(json.dumps(claims()).encode())
    for token in (f"{header}.{body}.", f"{header}.{body}.{b64(b'sig')}"):
        await refused(verify, token, "algorithm")


async def test_other_hmac_algorithms_than_allowed_are_refused(verify: Callable[..., Any]) -> None:
    await refused(verify, sign(claims(), key=SECRET * 2, alg="HS512"), "algorithm")


async def test_tampered_payload_and_signature_are_refused(verify: Callable[..., Any]) -> None:
    token = sign(claims())
    header, payload, signature = token.split(".")
    forged = b64(json.dumps(claims(company_id="company-2")).encode())
    await refused(verify, f"{header}.{forged}.{signature}", "signature")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    await refused(verify, f"{header}.{payload}.{flipped}", "signature")
    await refused(verify, f"{header}.{payload}.{signature[:-6]}")
    await refused(verify, f"{header}.{payload}.")
    await refused(verify, sign(claims(), key=SECRET + "x"), "signature")


@pytest.mark.parametrize(
    ("exp_offset", "leeway", "ok"),
    [(-31, 30, False), (-30, 30, False), (-29, 30, True), (0, 0, False), (1, 0, True)],
)
async def test_expiry_against_leeway_on_both_sides(
    clock: Clock, exp_offset: int, leeway: int, ok: bool
) -> None:
    config = JwtConfig(
        issuer="https://issuer.test", audience="chat", hs256_secret=SECRET, leeway_s=leeway
    )
    token = sign(claims(iat=int(NOW) - 600, exp=int(NOW) + exp_offset))
    verifier = JwtVerifier(config, clock=clock)
    if ok:
        assert (await verifier.verify(token)).user_id == "user-1"
    else:
        with pytest.raises(AuthError, match="expired"):
            await verifier.verify(token)


async def test_same_token_expires_as_the_clock_moves(clock: Clock) -> None:
    verifier = JwtVerifier(CONFIG, clock=clock)
    token = sign(claims(exp=int(NOW) + 10))
    await verifier.verify(token)
    clock.now = NOW + 10 + 29
    await verifier.verify(token)
    clock.now = NOW + 10 + 30
    with pytest.raises(AuthError, match="expired"):
        await verifier.verify(token)


class CountingVerifier(JwtVerifier):
    """Counts full verifications (parse and signature check)."""

    full = 0

    async def _verify(self, token: str) -> Any:
        self.full += 1
        return await super()._verify(token)


async def test_a_verified_token_is_remembered_but_its_time_still_checked(clock: Clock) -> None:
    verifier = CountingVerifier(CONFIG, clock=clock)
    token = sign(claims(exp=int(NOW) + 10))
    for _ in range(3):
        assert (await verifier.verify(token)).user_id == "user-1"
    assert verifier.full == 1
    # another string is never a hit: a forged payload under the remembered signature
    header, _, signature = token.split(".")
    forged = b64(json.dumps(claims(exp=int(NOW) + 10, company_id="company-2")).encode())
    await refused(verifier.verify, f"{header}.{forged}.{signature}", "signature")
    assert verifier.full == 2
    clock.now = NOW + 10 + 30
    await refused(verifier.verify, token, "expired")
    # refused tokens are not remembered: each is checked in full
    for _ in range(2):
        await refused(verifier.verify, sign(claims(), key=SECRET + "x"), "signature")
    assert verifier.full == 4


async def test_the_verified_cache_is_bounded_and_can_be_off(clock: Clock) -> None:
    small = dataclasses.replace(CONFIG, verified_cache_size=2)
    verifier = CountingVerifier(small, clock=clock)
    tokens = [sign(claims(sub=f"user-{n}")) for n in range(3)]
    for token in tokens:  # the third pushes the first out
        await verifier.verify(token)
    await verifier.verify(tokens[2])
    await verifier.verify(tokens[1])
    assert verifier.full == 3
    await verifier.verify(tokens[0])
    assert verifier.full == 4
    off = CountingVerifier(dataclasses.replace(CONFIG, verified_cache_size=0), clock=clock)
    for _ in range(3):
        await off.verify(tokens[0])
    assert off.full == 3
    with pytest.raises(ValueError, match="verified_cache_size"):
        dataclasses.replace(CONFIG, verified_cache_size=-1)


async def test_tokens_from_the_future_are_refused(verify: Callable[..., Any]) -> None:
    await refused(verify, sign(claims(iat=int(NOW) + 31)), "not yet valid")
    await refused(verify, sign(claims(nbf=int(NOW) + 31)), "not yet valid")
    assert await verify(sign(claims(nbf=int(NOW) + 30)))


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (claims(iss="https://evil.test"), "issuer"),
        (claims(aud="other-app"), "audience"),
        (claims(aud=["other-app", "another"]), "audience"),
        (claims(iss=...), "missing the iss"),
        (claims(aud=...), "missing the aud"),
        (claims(exp=...), "missing the exp"),
        (claims(iat=...), "missing the iat"),
        (claims(sub=...), "missing the sub"),
        (claims(company_id=...), "missing the company_id"),
        (claims(sub=""), "sub"),
        (claims(sub=123), "sub"),
        (claims(sub=None), "sub"),
        (claims(company_id=123), "company_id"),
        (claims(company_id=""), "company_id"),
        (claims(exp="tomorrow"), "exp"),
    ],
)
async def test_claims_are_required_and_checked(
    verify: Callable[..., Any], payload: dict[str, Any], match: str
) -> None:
    await refused(verify, sign(payload), match)


async def test_audience_list_containing_ours_is_accepted(verify: Callable[..., Any]) -> None:
    assert (await verify(sign(claims(aud=["other", "chat"])))).company_id == "company-1"


async def test_custom_tenant_claim(clock: Clock) -> None:
    config = JwtConfig(
        issuer="https://issuer.test", audience="chat", hs256_secret=SECRET, tenant_claim="org_id"
    )
    verifier = JwtVerifier(config, clock=clock)
    principal = await verifier.verify(sign(claims(company_id=..., org_id="org-7")))
    assert principal.company_id == "org-7"
    # The default claim name means nothing once another is configured.
    with pytest.raises(AuthError, match="missing the org_id"):
        await verifier.verify(sign(claims()))


async def test_oversize_token_is_refused_before_decoding(verify: Callable[..., Any]) -> None:
    big = sign(claims(padding="x" * 9000))  # correctly signed, just too large
    await refused(verify, big, "too large")
    small_limit = JwtConfig(
        issuer="https://issuer.test", audience="chat", hs256_secret=SECRET, max_token_bytes=100
    )
    await refused(lambda t: verify(t, small_limit), sign(claims()), "too large")


@pytest.mark.parametrize("exp", [b"1e400", b"-1e400", b"1" + b"0" * 400])
async def test_exp_that_parses_as_infinity_is_refused(
    verify: Callable[..., Any], exp: bytes
) -> None:
    """`exp: 1e400` is infinity to a JSON parser: a signed token must not live forever."""
    body = json.dumps(claims(exp=0)).encode().replace(b'"exp": 0', b'"exp": ' + exp)
    signing_input = f"{b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{b64(body)}"
    signature = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    await refused(verify, f"{signing_input}.{b64(signature)}", "finite")


async def test_token_living_longer_than_the_maximum_is_refused(
    verify: Callable[..., Any],
) -> None:
    await refused(verify, sign(claims(exp=int(NOW) + 10 * 86_400)), "lifetime")


async def test_wrong_token_type_is_refused(verify: Callable[..., Any]) -> None:
    await refused(verify, sign(claims(), typ="refresh+jwt"), "type")
    assert await verify(sign(claims(), typ="at+jwt"))


async def test_random_garbage_never_crashes(verify: Callable[..., Any]) -> None:
    rng = random.Random(1234)
    alphabet = string.ascii_letters + string.digits + "-_=+/.{}\"' \x00é"
    token = sign(claims())
    samples = [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200))) for _ in range(150)
    ]
    # Mutations of a real token: every position, one character changed.
    samples += [token[:i] + rng.choice("AaZz09-_.") + token[i + 1 :] for i in range(len(token))]
    statuses: set[int] = set()
    for sample in samples:
        if sample == token:
            continue
        try:
            principal = await verify(sample)
        except AuthError as exc:
            statuses.add(exc.status)
        else:
            # A base64 change in the last padding bits can decode to the same bytes.
            assert principal.company_id == "company-1"
    assert statuses == {401}


async def test_mint_dev_token_round_trips(clock: Clock) -> None:
    token = mint_dev_token(CONFIG, user_id="u-9", company_id="c-9", ttl_s=60, now=NOW)
    principal = await JwtVerifier(CONFIG, clock=clock).verify(token)
    assert (principal.user_id, principal.company_id, principal.expires_at) == (
        "u-9",
        "c-9",
        NOW + 60,
    )
    clock.now = NOW + 60 + 30
    with pytest.raises(AuthError, match="expired"):
        await JwtVerifier(CONFIG, clock=clock).verify(token)


def test_mint_dev_token_needs_a_development_config() -> None:
    jwks = JwtConfig(
        issuer="i", audience="a", jwks_url="https://idp.test/jwks", algorithms=("RS256",)
    )
    with pytest.raises(ValueError, match="hs256_secret"):
        mint_dev_token(jwks, user_id="u", company_id="c")
    with pytest.raises(ValueError, match="ttl_s"):
        mint_dev_token(CONFIG, user_id="u", company_id="c", ttl_s=0)
