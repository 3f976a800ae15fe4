"""Pure parts of token verification from tables: header, claims, config, JWK binding."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from gateway.auth import (
    AuthError,
    JwtConfig,
    Principal,
    bearer_token,
    parse_header,
    principal_from_claims,
)
from gateway.jwks import key_algorithm, parse_jwks

SECRET = "s" * 32
HS = JwtConfig(issuer="iss-1", audience="aud-1", hs256_secret=SECRET)
JWKS = JwtConfig(
    issuer="iss-1",
    audience="aud-1",
    jwks_url="http://127.0.0.1:1/jwks",
    algorithms=("RS256", "ES256", "EdDSA"),
)
NOW = 1_700_000_000.0


def b64(obj: Any) -> str:
    raw = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def token_with_header(header: Any) -> str:
    return f"{b64(header)}.{b64({'sub': 'u'})}.c2ln"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc.def.ghi", "abc.def.ghi"),
        ("BEARER a-b_c~d+e/f==", "a-b_c~d+e/f=="),
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("Bearer  abc", None),
        ("Bearer abc def", None),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearer abc\r\nX-Evil: 1", None),
        ("Bearerabc", None),
        ("Bearer abc=def", None),
    ],
)
def test_bearer_token_parses_only_well_formed_headers(
    header: str | None, expected: str | None
) -> None:
    assert bearer_token(header) == expected


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("", "malformed"),
        ("abc", "malformed"),
        ("a.b", "malformed"),
        ("a.b.c.d", "malformed"),
        ("é.é.é", "malformed"),
        ("!!!.###.$$$", "malformed"),
        (f"{b64(b'not json')}.e30.c2ln", "malformed"),
        (f"{b64([1, 2])}.e30.c2ln", "malformed"),
        (f"{b64(b'[' * 5000)}.e30.c2ln", "malformed"),
        (token_with_header({"alg": "none"}), "algorithm"),
        (token_with_header({"alg": "None"}), "algorithm"),
        (token_with_header({"alg": "NONE"}), "algorithm"),
        (token_with_header({"alg": ""}), "algorithm"),
        (token_with_header({"alg": None}), "algorithm"),
        (token_with_header({"typ": "JWT"}), "algorithm"),
        (token_with_header({"alg": "HS512"}), "algorithm"),
        (token_with_header({"alg": "RS256"}), "algorithm"),
        (token_with_header({"alg": ["HS256"]}), "algorithm"),
        (token_with_header({"alg": "HS256", "typ": "refresh+jwt"}), "type"),
        (token_with_header({"alg": "HS256", "typ": "id_token"}), "type"),
        (token_with_header({"alg": "HS256", "typ": 1}), "type"),
        ("x" * 8193, "too large"),
    ],
)
def test_parse_header_refuses_bad_shapes_in_hs_mode(token: str, message: str) -> None:
    with pytest.raises(AuthError, match=message) as caught:
        parse_header(token, HS)
    assert caught.value.status == 401
    assert caught.value.code == "UNAUTHORIZED"


@pytest.mark.parametrize("typ", [None, "JWT", "jwt", "at+jwt", "application/at+JWT"])
def test_parse_header_accepts_access_token_types(typ: str | None) -> None:
    header = {"alg": "HS256"} if typ is None else {"alg": "HS256", "typ": typ}
    assert parse_header(token_with_header(header), HS)["alg"] == "HS256"


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ({"alg": "RS256", "kid": "k1"}, True),
        ({"alg": "RS256"}, False),
        ({"alg": "RS256", "kid": ""}, False),
        ({"alg": "RS256", "kid": 7}, False),
        ({"alg": "RS256", "kid": "k" * 129}, False),
        ({"alg": "RS256", "kid": "k" * 10_000}, False),
        ({"alg": "HS256", "kid": "k1"}, False),
        ({"alg": "PS256", "kid": "k1"}, False),
    ],
)
def test_parse_header_in_jwks_mode_needs_an_allowed_alg_and_a_sane_kid(
    header: dict[str, Any], ok: bool
) -> None:
    token = token_with_header(header)
    if ok:
        assert parse_header(token, JWKS)["kid"] == "k1"
    else:
        with pytest.raises(AuthError):
            parse_header(token, JWKS)


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": "iss-1",
        "aud": "aud-1",
        "sub": "user-1",
        "company_id": "company-1",
        "iat": NOW - 10,
        "exp": NOW + 600,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


@pytest.mark.parametrize(
    ("payload", "now", "error"),
    [
        (claims(), NOW, None),
        # exp against a 30 s leeway: expired at exactly now - leeway, valid one second later
        (claims(exp=NOW - 30), NOW, "expired"),
        (claims(exp=NOW - 29), NOW, None),
        (claims(exp=NOW + 0.5), NOW + 30.5, "expired"),
        (claims(exp=NOW), NOW + 29.9, None),
        # iat / nbf in the future beyond the leeway
        (claims(iat=NOW + 30), NOW, None),
        (claims(iat=NOW + 31), NOW, "not yet valid"),
        (claims(nbf=NOW + 30), NOW, None),
        (claims(nbf=NOW + 31), NOW, "not yet valid"),
        # required claims
        (claims(exp=...), NOW, "missing the exp"),
        (claims(iat=...), NOW, "missing the iat"),
        (claims(sub=...), NOW, "missing the sub"),
        (claims(company_id=...), NOW, "missing the company_id"),
        (claims(iss=...), NOW, "issuer"),
        (claims(iss="other"), NOW, "issuer"),
        # types
        (claims(exp="soon"), NOW, "number"),
        (claims(exp=True), NOW, "number"),
        (claims(iat=[1]), NOW, "number"),
        (claims(exp=float("nan")), NOW, "number"),
        # dates that never come, and lifetimes past the maximum (24 h by default)
        (claims(exp=float("inf")), NOW, "finite"),
        (claims(exp=10**400), NOW, "finite"),
        (claims(iat=float("-inf")), NOW, "finite"),
        (claims(exp=NOW - 10 + 86_400), NOW, None),
        (claims(exp=NOW - 9 + 86_400), NOW, "lifetime"),
        (claims(iat=NOW + 30, exp=NOW + 86_430), NOW, None),
        (claims(iat=NOW - 10**9, exp=NOW + 600), NOW, "lifetime"),
        (claims(sub=""), NOW, "non-empty string"),
        (claims(sub="   "), NOW, "non-empty string"),
        (claims(sub=42), NOW, "non-empty string"),
        (claims(sub=["u"]), NOW, "non-empty string"),
        (claims(sub="a\nb"), NOW, "invalid"),
        (claims(sub="u" * 257), NOW, "invalid"),
        (claims(company_id=7), NOW, "non-empty string"),
        (claims(company_id=""), NOW, "non-empty string"),
        (claims(company_id={"id": "c"}), NOW, "non-empty string"),
    ],
)
def test_principal_from_claims(payload: dict[str, Any], now: float, error: str | None) -> None:
    if error is None:
        principal = principal_from_claims(payload, HS, now)
        assert principal == Principal("user-1", "company-1", "iss-1", float(payload["exp"]))
    else:
        with pytest.raises(AuthError, match=error):
            principal_from_claims(payload, HS, now)


def test_custom_tenant_claim_is_the_only_tenant_source() -> None:
    config = JwtConfig(issuer="iss-1", audience="aud-1", hs256_secret=SECRET, tenant_claim="org")
    assert principal_from_claims(claims(org="org-9"), config, NOW).company_id == "org-9"
    with pytest.raises(AuthError, match="missing the org"):
        principal_from_claims(claims(), config, NOW)


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"hs256_secret": "short"}, "at least 32 bytes"),
        ({}, "need hs256_secret"),
        ({"hs256_secret": SECRET, "algorithms": ()}, "must not be empty"),
        ({"hs256_secret": SECRET, "algorithms": ("none",)}, "unsupported"),
        ({"hs256_secret": SECRET, "algorithms": ("RS256",)}, "need jwks_url"),
        (
            {"hs256_secret": SECRET, "jwks_url": "http://x/jwks", "algorithms": ("HS256", "RS256")},
            "cannot be combined",
        ),
        ({"jwks_url": "file:///etc/jwks", "algorithms": ("RS256",)}, "http"),
        ({"hs256_secret": SECRET, "tenant_claim": "sub"}, "tenant_claim"),
        ({"hs256_secret": SECRET, "leeway_s": -1}, "leeway_s"),
        ({"hs256_secret": SECRET, "max_token_bytes": 0}, "max_token_bytes"),
        ({"hs256_secret": SECRET, "issuer": ""}, "issuer"),
    ],
)
def test_config_refuses_unsafe_or_contradictory_settings(
    kwargs: dict[str, Any], problem: str
) -> None:
    base: dict[str, Any] = {"issuer": "iss-1", "audience": "aud-1"}
    with pytest.raises(ValueError, match=problem):
        JwtConfig(**{**base, **kwargs})


def rsa_jwk(**extra: Any) -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    return {**RSAAlgorithm.to_jwk(key, as_dict=True), **extra}


def ec_jwk(curve: ec.EllipticCurve, **extra: Any) -> dict[str, Any]:
    key = ec.generate_private_key(curve).public_key()
    return {**ECAlgorithm.to_jwk(key, as_dict=True), **extra}


def ed_jwk(**extra: Any) -> dict[str, Any]:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return {**OKPAlgorithm.to_jwk(key, as_dict=True), **extra}


@pytest.fixture(scope="module")
def rsa_public() -> dict[str, Any]:
    return rsa_jwk()


def test_key_algorithm_binds_each_key_to_one_algorithm(rsa_public: dict[str, Any]) -> None:
    table: list[tuple[dict[str, Any], str | None]] = [
        (rsa_public, "RS256"),
        ({**rsa_public, "alg": "PS256"}, "PS256"),
        ({**rsa_public, "alg": "HS256"}, None),
        ({**rsa_public, "alg": "ES256"}, None),
        ({**rsa_public, "use": "enc"}, None),
        ({**rsa_public, "d": "private"}, None),
        (ec_jwk(ec.SECP256R1()), "ES256"),
        (ec_jwk(ec.SECP384R1()), "ES384"),
        (ec_jwk(ec.SECP256R1(), alg="ES384"), None),
        (ed_jwk(), "EdDSA"),
        (ed_jwk(alg="ES256"), None),
        ({"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}, None),
        ({"kty": "weird"}, None),
    ]
    for jwk, expected in table:
        assert key_algorithm(jwk) == expected, jwk


def test_parse_jwks_keeps_only_usable_allowed_keys(rsa_public: dict[str, Any]) -> None:
    document = {
        "keys": [
            {**rsa_public, "kid": "rsa"},
            {**rsa_public, "kid": "rsa"},  # duplicate kid: first wins
            {**rsa_public},  # no kid
            {**rsa_public, "kid": "k" * 200},  # kid too long
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            ec_jwk(ec.SECP384R1(), kid="ec384"),  # ES384 not allowed below
            ed_jwk(kid="ed"),
            {**rsa_public, "kid": "broken", "n": "!!"},
            "not a key",
        ]
    }
    keys = parse_jwks(
        json.dumps(document).encode(),
        algorithms={"RS256", "EdDSA"},
        max_keys=20,
        max_kid_chars=128,
    )
    assert sorted(keys) == ["ed", "rsa"]
    assert keys["rsa"].algorithm_name == "RS256"
    capped = parse_jwks(
        json.dumps(document).encode(), algorithms={"RS256", "EdDSA"}, max_keys=1, max_kid_chars=128
    )
    assert list(capped) == ["rsa"]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b"{}",
        b'{"keys": {}}',
        b'{"keys": []}',
        b"\xff\xfe",
        b'{"keys": [{"kty": "oct"}]}',
    ],
)
def test_parse_jwks_refuses_documents_without_usable_keys(body: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - every malformed document is a ValueError
        parse_jwks(body, algorithms={"RS256"}, max_keys=20, max_kid_chars=128)
