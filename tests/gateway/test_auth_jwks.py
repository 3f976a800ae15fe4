"""The verifier in JWKS mode against a real JWKS server: keys, rotation, outages, kid tricks."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from gateway.auth import AuthError, AuthUnavailable, JwtConfig, JwtVerifier

NOW = 1_700_000_000.0
ALGS = ("RS256", "ES256", "EdDSA")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: Any
    jwk: dict[str, Any]


def make_key(kind: str, kid: str) -> SigningKey:
    if kind == "RS256":
        private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    elif kind == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
        jwk = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    else:
        private = ed25519.Ed25519PrivateKey.generate()
        jwk = OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return SigningKey(kid, kind, private, {**jwk, "kid": kid, "alg": kind, "use": "sig"})


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {
        "RS256": make_key("RS256", "rsa-1"),
        "ES256": make_key("ES256", "ec-1"),
        "EdDSA": make_key("EdDSA", "ed-1"),
        "rotated": make_key("RS256", "rsa-2"),
        "attacker": make_key("RS256", "evil-1"),
    }


@dataclass
class FakeJwks:
    """A JWKS endpoint whose document and health the test controls; counts every hit."""

    keys: list[dict[str, Any]]
    mode: str = "ok"  # ok | error | junk | huge | slow
    hits: int = 0
    served: int = 0
    paths: list[str] = field(default_factory=list)
    delay_s: float = 0.0
    url: str = ""
    _served_signals: dict[int, asyncio.Event] = field(default_factory=dict)

    async def wait_until_served(self, count: int) -> None:
        """Return once `count` documents have been served."""
        if self.served < count:
            await self._served_signals.setdefault(count, asyncio.Event()).wait()

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        self.paths.append(request.path_qs)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.mode == "error":
            return web.Response(status=503, text="down")
        if self.mode == "junk":
            return web.Response(text="<html>not json</html>")
        if self.mode == "huge":
            return web.json_response({"keys": self.keys, "pad": "x" * 100_000})
        if self.mode == "slow":
            await asyncio.sleep(1)
        self.served += 1
        if (signal := self._served_signals.get(self.served)) is not None:
            signal.set()
        return web.json_response({"keys": self.keys})


async def serve(handler: Callable[[web.Request], Any]) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def jwks(keys: dict[str, SigningKey]) -> AsyncIterator[FakeJwks]:
    fake = FakeJwks(keys=[keys[a].jwk for a in ALGS])
    runner, base = await serve(fake.handle)
    fake.url = f"{base}/.well-known/jwks.json"
    yield fake
    await runner.cleanup()


@pytest.fixture
def wall() -> Clock:
    return Clock(NOW)


@pytest.fixture
def mono() -> Clock:
    return Clock(100.0)


def config(url: str, **overrides: Any) -> JwtConfig:
    settings: dict[str, Any] = {
        "issuer": "https://idp.test",
        "audience": "chat",
        "jwks_url": url,
        "algorithms": ALGS,
        "jwks_ttl_s": 300,
        "jwks_unknown_kid_cooldown_s": 30,
        "jwks_stale_if_error_s": 600,
        "jwks_error_backoff_s": 5,
        "jwks_timeout_s": 1,
    }
    settings.update(overrides)
    return JwtConfig(**settings)


@pytest.fixture
async def make_verifier(
    jwks: FakeJwks, wall: Clock, mono: Clock
) -> AsyncIterator[Callable[..., JwtVerifier]]:
    made: list[JwtVerifier] = []

    def build(**overrides: Any) -> JwtVerifier:
        verifier = JwtVerifier(config(jwks.url, **overrides), clock=wall, monotonic=mono)
        made.append(verifier)
        return verifier

    yield build
    for verifier in made:
        await verifier.close()


def claims(**overrides: Any) -> dict[str, Any]:
    base = {
        "iss": "https://idp.test",
        "aud": "chat",
        "sub": "user-1",
        "company_id": "company-1",
        "iat": int(NOW),
        "exp": int(NOW) + 600,
    }
    return {**base, **overrides}


def sign(key: SigningKey, *, alg: str | None = None, headers: dict[str, Any] | None = None) -> str:
    header = {"kid": key.kid, **(headers or {})}
    return jwt.encode(claims(), key.private, algorithm=alg or key.alg, headers=header)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hs256_forgery(secret: bytes, kid: str) -> str:
    """The classic key-confusion token: HS256 keyed with material the attacker can read."""
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    payload = b64(json.dumps(claims(company_id="victim-co")).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


@pytest.mark.parametrize("alg", ALGS)
async def test_each_asymmetric_algorithm_verifies(
    make_verifier: Callable[..., JwtVerifier], keys: dict[str, SigningKey], alg: str
) -> None:
    principal = await make_verifier().verify(sign(keys[alg]))
    assert (principal.user_id, principal.company_id) == ("user-1", "company-1")


async def test_hs256_signed_with_the_public_key_is_refused(
    make_verifier: Callable[..., JwtVerifier], keys: dict[str, SigningKey], jwks: FakeJwks
) -> None:
    verifier = make_verifier()
    public_pem = (
        keys["RS256"]
        .private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    for secret in (public_pem, json.dumps(keys["RS256"].jwk).encode()):
        with pytest.raises(AuthError, match="algorithm") as caught:
            await verifier.verify(hs256_forgery(secret, "rsa-1"))
        assert caught.value.status == 401
    assert jwks.hits == 0  # refused on the header alone


async def test_algorithm_must_match_the_key_not_the_header(
    make_verifier: Callable[..., JwtVerifier], keys: dict[str, SigningKey]
) -> None:
    verifier = make_verifier(algorithms=("RS256", "PS256", "ES256", "ES384", "EdDSA"))
    # Same RSA key, other padding: the JWK says RS256, so PS256 is refused.
    with pytest.raises(AuthError, match="does not match"):
        await verifier.verify(sign(keys["RS256"], alg="PS256"))
    # An ES256 key claimed as ES384.
    header = b64(json.dumps({"alg": "ES384", "kid": "ec-1"}).encode())
    token = f"{header}.{sign(keys['ES256']).split('.', 1)[1]}"
    with pytest.raises(AuthError, match="does not match"):
        await verifier.verify(token)


async def test_tampered_tokens_are_refused(
    make_verifier: Callable[..., JwtVerifier], keys: dict[str, SigningKey]
) -> None:
    verifier = make_verifier()
    for alg in ALGS:
        header, payload, signature = sign(keys[alg]).split(".")
        forged = b64(json.dumps(claims(company_id="company-2")).encode())
        with pytest.raises(AuthError, match="signature"):
            await verifier.verify(f"{header}.{forged}.{signature}")
        flipped = signature[:5] + ("A" if signature[5] != "A" else "B") + signature[6:]
        with pytest.raises(AuthError):
            await verifier.verify(f"{header}.{payload}.{flipped}")
        with pytest.raises(AuthError):
            await verifier.verify(f"{header}.{payload}.{signature[:-8]}")


async def test_unknown_kid_refetches_once_then_cools_down(
    make_verifier: Callable[..., JwtVerifier],
    keys: dict[str, SigningKey],
    jwks: FakeJwks,
    mono: Clock,
) -> None:
    verifier = make_verifier()
    await verifier.verify(sign(keys["RS256"]))
    assert jwks.hits == 1
    stranger = keys["attacker"]
    with pytest.raises(AuthError, match="not known"):
        await verifier.verify(sign(stranger))
    assert jwks.hits == 2  # one refetch: it might have been a fresh rotation
    for kid in ("evil-2", "evil-3"):
        with pytest.raises(AuthError, match="not known"):
            await verifier.verify(sign(SigningKey(kid, "RS256", stranger.private, {})))
    assert jwks.hits == 2  # cooling down
    mono.now += 30
    with pytest.raises(AuthError, match="not known"):
        await verifier.verify(sign(stranger))
    assert jwks.hits == 3


async def test_a_burst_of_random_kids_costs_at_most_one_fetch(
    make_verifier: Callable[..., JwtVerifier], keys: dict[str, SigningKey], jwks: FakeJwks
) -> None:
    verifier = make_verifier()
    await verifier.start()
    assert jwks.hits == 1
    tokens = [
        sign(SigningKey(uuid.uuid4().hex, "RS256", keys["attacker"].private, {}))
        for _ in range(100)
    ]
    results = await asyncio.gather(*(verifier.verify(t) for t in tokens), return_exceptions=True)
    assert all(isinstance(r, AuthError) and r.status == 401 for r in results)
    assert jwks.hits == 2


@pytest.mark.parametrize(
    "kid", ["../../../../etc/passwd", "' OR 1=1 --", "rsa-1/../../admin", "%2e%2e%2f", "rsa-1\x00"]
)
async def test_hostile_kids_are_only_dictionary_lookups(
    make_verifier: Callable[..., JwtVerifier],
    keys: dict[str, SigningKey],
    jwks: FakeJwks,
    kid: str,
) -> None:
    verifier = make_verifier()
    forged = sign(SigningKey(kid, "RS256", keys["attacker"].private, {}))
    with pytest.raises(AuthError, match="not known"):
        await verifier.verify(forged)
    assert set(jwks.paths) == {"/.well-known/jwks.json"}  # the kid never shapes a request


async def test_huge_kid_is_refused_without_any_fetch(
    make_verifier: Callable[..., JwtVerifier], keys: dict[str, SigningKey], jwks: FakeJwks
) -> None:
    forged = sign(SigningKey("k" * 10_000, "RS256", keys["attacker"].private, {}))
    with pytest.raises(AuthError):
        await make_verifier(max_token_bytes=65536).verify(forged)
    assert jwks.hits == 0


async def test_jku_and_x5u_headers_are_never_fetched(
    make_verifier: Callable[..., JwtVerifier], keys: dict[str, SigningKey]
) -> None:
    attacker = FakeJwks(keys=[keys["attacker"].jwk])
    runner, base = await serve(attacker.handle)
    try:
        verifier = make_verifier()
        hostile: dict[str, Any] = {
            "jku": f"{base}/jwks",
            "x5u": f"{base}/cert.pem",
            "jwk": keys["attacker"].jwk,
        }
        with pytest.raises(AuthError, match="not known"):
            await verifier.verify(sign(keys["attacker"], headers=hostile))
        # A genuine token carrying the same headers verifies with our key; they are ignored.
        principal = await verifier.verify(sign(keys["RS256"], headers=hostile))
        assert principal.company_id == "company-1"
        assert attacker.hits == 0
    finally:
        await runner.cleanup()


async def test_a_newly_published_key_is_accepted_after_refetch(
    make_verifier: Callable[..., JwtVerifier],
    keys: dict[str, SigningKey],
    jwks: FakeJwks,
) -> None:
    verifier = make_verifier()
    await verifier.verify(sign(keys["RS256"]))
    jwks.keys = [*jwks.keys, keys["rotated"].jwk]
    principal = await verifier.verify(sign(keys["rotated"]))
    assert principal.user_id == "user-1"
    assert jwks.hits == 2


async def test_a_removed_key_is_refused_after_the_ttl(
    make_verifier: Callable[..., JwtVerifier],
    keys: dict[str, SigningKey],
    jwks: FakeJwks,
    mono: Clock,
) -> None:
    verifier = make_verifier(jwks_ttl_s=300)
    old = sign(keys["RS256"])
    await verifier.verify(old)
    jwks.keys = [k for k in jwks.keys if k["kid"] != "rsa-1"]
    mono.now += 200  # inside the TTL (and before refresh-ahead): still cached
    await verifier.verify(old)
    mono.now += 100
    with pytest.raises(AuthError, match="not known"):
        await verifier.verify(old)


def _serve_another_key_as_rsa_1(jwks: FakeJwks, keys: dict[str, SigningKey]) -> None:
    """The key set now serves the rotated key under the kid `rsa-1` (a key replaced in place)."""
    jwks.keys = [
        {**keys["rotated"].jwk, "kid": "rsa-1"} if k["kid"] == "rsa-1" else k for k in jwks.keys
    ]


async def test_a_key_replaced_under_the_same_kid_refuses_remembered_tokens(
    make_verifier: Callable[..., JwtVerifier],
    keys: dict[str, SigningKey],
    jwks: FakeJwks,
    mono: Clock,
) -> None:
    """A verified token is remembered with the key that checked it: once the key set serves
    another key under its kid, the token is checked again, against the new key."""
    verifier = make_verifier(jwks_ttl_s=300)
    old = sign(keys["RS256"])
    await verifier.verify(old)
    await verifier.verify(old)
    _serve_another_key_as_rsa_1(jwks, keys)
    mono.now += 300
    with pytest.raises(AuthError, match="signature"):
        await verifier.verify(old)


async def test_concurrent_checks_of_a_remembered_token_during_a_key_change_are_401s(
    make_verifier: Callable[..., JwtVerifier],
    keys: dict[str, SigningKey],
    jwks: FakeJwks,
    mono: Clock,
) -> None:
    """Requests sharing a remembered token wait on the same key-set refresh; when it brings
    another key, each is refused with a 401 (the first to wake must not break the others)."""
    verifier = make_verifier(jwks_ttl_s=300)
    old = sign(keys["RS256"])
    await verifier.verify(old)
    _serve_another_key_as_rsa_1(jwks, keys)
    jwks.delay_s = 0.05
    mono.now += 300
    outcomes = await asyncio.gather(
        *(verifier.verify(old) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(o, AuthError) for o in outcomes), outcomes


async def test_refresh_ahead_happens_off_the_request_path(
    make_verifier: Callable[..., JwtVerifier],
    keys: dict[str, SigningKey],
    jwks: FakeJwks,
    mono: Clock,
) -> None:
    verifier = make_verifier(jwks_ttl_s=100)
    token = sign(keys["ES256"])
    await verifier.verify(token)
    jwks.delay_s = 0.2  # a slow refresh must not hold the request
    mono.now += 85
    await verifier.verify(token)
    assert jwks.served == 1  # answered from cache while the refresh is still being served
    async with asyncio.timeout(2):
        await jwks.wait_until_served(2)
    assert jwks.hits == jwks.served == 2
    mono.now += 90  # past the first TTL, inside the refreshed one: no fetch needed
    await verifier.verify(token)
    assert jwks.hits == 2


async def test_stale_keys_keep_working_during_an_outage_until_stale_if_error_ends(
    make_verifier: Callable[..., JwtVerifier],
    keys: dict[str, SigningKey],
    jwks: FakeJwks,
    mono: Clock,
) -> None:
    verifier = make_verifier(jwks_ttl_s=300, jwks_stale_if_error_s=600, jwks_error_backoff_s=5)
    token = sign(keys["EdDSA"])
    await verifier.verify(token)
    for mode in ("error", "junk", "huge"):
        jwks.mode = mode
        mono.now += 301
        before = jwks.hits
        assert (await verifier.verify(token)).user_id == "user-1"
        assert jwks.hits == before + 1
        # Within the error backoff nobody waits on another doomed fetch.
        await verifier.verify(token)
        assert jwks.hits == before + 1
        jwks.mode = "ok"
        mono.now += 5
        await verifier.verify(token)  # recovers: a fresh fetch
        assert jwks.hits == before + 2
    jwks.mode = "error"
    mono.now += 300 + 600
    with pytest.raises(AuthUnavailable) as caught:
        await verifier.verify(token)
    assert (caught.value.status, caught.value.code) == (503, "UPSTREAM_UNAVAILABLE")


async def test_cold_cache_with_jwks_down_is_a_clear_503_after_one_fetch(
    make_verifier: Callable[..., JwtVerifier], keys: dict[str, SigningKey], jwks: FakeJwks
) -> None:
    jwks.mode, jwks.delay_s = "error", 0.05
    verifier = make_verifier()
    tokens = [sign(keys[alg]) for alg in ALGS] * 10
    results = await asyncio.gather(*(verifier.verify(t) for t in tokens), return_exceptions=True)
    assert all(isinstance(r, AuthUnavailable) and r.status == 503 for r in results), results
    assert all(isinstance(r, AuthUnavailable) and r.retryable for r in results)
    assert jwks.hits == 1  # single flight
    with pytest.raises(AuthUnavailable, match="temporarily unavailable"):
        await verifier.verify(tokens[0])
    assert jwks.hits == 1  # backing off


async def test_slow_jwks_times_out_into_a_503(
    make_verifier: Callable[..., JwtVerifier], keys: dict[str, SigningKey], jwks: FakeJwks
) -> None:
    jwks.mode = "slow"
    verifier = make_verifier(jwks_timeout_s=0.2)
    async with asyncio.timeout(4):  # a hang would fail here rather than stall the suite
        with pytest.raises(AuthUnavailable) as caught:
            await verifier.verify(sign(keys["RS256"]))
    assert caught.value.status == 503


async def test_start_survives_a_down_jwks_and_recovers_later(
    make_verifier: Callable[..., JwtVerifier],
    keys: dict[str, SigningKey],
    jwks: FakeJwks,
    mono: Clock,
) -> None:
    jwks.mode = "error"
    verifier = make_verifier(jwks_error_backoff_s=5)
    await verifier.start()  # logs, does not raise
    assert jwks.hits == 1
    jwks.mode = "ok"
    mono.now += 5
    assert (await verifier.verify(sign(keys["RS256"]))).company_id == "company-1"


async def test_start_prewarms_so_requests_do_not_fetch(
    make_verifier: Callable[..., JwtVerifier], keys: dict[str, SigningKey], jwks: FakeJwks
) -> None:
    verifier = make_verifier()
    await verifier.start()
    for alg in ALGS:
        await verifier.verify(sign(keys[alg]))
    assert jwks.hits == 1


async def test_symmetric_keys_published_in_the_jwks_are_never_used(
    make_verifier: Callable[..., JwtVerifier], jwks: FakeJwks
) -> None:
    secret = b"published-secret-published-secret"
    jwks.keys = [
        *jwks.keys,
        {"kty": "oct", "kid": "oct-1", "alg": "HS256", "k": b64(secret)},
    ]
    with pytest.raises(AuthError):
        await make_verifier().verify(hs256_forgery(secret, "oct-1"))
