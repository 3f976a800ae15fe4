"""Every refused request gets a 4xx JSON error body with a stable code, before any stream starts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import aiohttp
import jwt
import pytest
from support.sse_client import stream_chat

from agent_service.settings import DEV_INTERNAL_SECRET

Mint = Callable[..., str]

GOOD_CONV = {"id": "conv-1", "user_id": "u-alice", "company_id": "acme-hvac"}


def body(message: Any = "How many technicians are active?", **conv: Any) -> dict[str, Any]:
    return {"input": {"message": message}, "conversation": {**GOOD_CONV, **conv}}


async def post_raw(url: str, data: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as s,
        s.post(f"{url}/internal/chat/stream", data=data, headers=headers) as r,
    ):
        return r.status, await r.json()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"conversation": GOOD_CONV}, "input"),
        ({"input": {"message": "hi"}}, "conversation"),
        (body(message=""), "input.message"),
        (body(message="   \n "), "input.message"),
        (body(message="x" * 8001), "input.message"),
        (body(message=42), "input.message"),
        (body(message="How many jobs?\x00"), "input.message"),  # PostgreSQL text cannot hold NUL
        (body(id="conv 1"), "conversation.id"),
        (body(id="../../etc/passwd"), "conversation.id"),
        (body(id="a') OR 1=1 --"), "conversation.id"),
        (body(id="c" * 129), "conversation.id"),
        (body(company_id=""), "conversation.company_id"),
        ({**body(), "extra": 1}, "extra"),
    ],
)
async def test_invalid_bodies_are_400_with_the_field(
    agent_url: str, mint: Mint, payload: Any, field: str
) -> None:
    result = await stream_chat(agent_url, mint(), "", body=payload)
    assert result.status == 400
    error = result.events[0]["error"]
    assert error["code"] == "INVALID_REQUEST"
    assert any(d["field"].startswith(field) for d in error["details"]), error


async def test_a_lone_surrogate_is_400(agent_url: str, mint: Mint) -> None:
    # JSON can spell one ("\ud800") but UTF-8 cannot encode it: refused, never stored.
    result = await stream_chat(agent_url, mint(), "How many jobs?\ud800")
    assert result.status == 400
    assert result.events[0]["error"]["code"] == "INVALID_REQUEST"


async def test_invalid_json_is_400(agent_url: str, mint: Mint) -> None:
    status, err = await post_raw(
        agent_url,
        b'{"input": {"message": "hi"',
        {"Authorization": f"Bearer {mint()}", "Content-Type": "application/json"},
    )
    assert status == 400
    assert err["error"]["details"][0]["problem"] == "not valid JSON"


async def test_wrong_content_type_is_415(agent_url: str, mint: Mint) -> None:
    status, err = await post_raw(
        agent_url, b"hello", {"Authorization": f"Bearer {mint()}", "Content-Type": "text/plain"}
    )
    assert (status, err["error"]["code"]) == (415, "UNSUPPORTED_MEDIA_TYPE")


async def test_oversized_body_is_413(agent_url: str, mint: Mint) -> None:
    status, err = await post_raw(
        agent_url,
        b"{" + b" " * 70_000 + b"}",
        {"Authorization": f"Bearer {mint()}", "Content-Type": "application/json"},
    )
    assert (status, err["error"]["code"]) == (413, "PAYLOAD_TOO_LARGE")


def _token(**claims: Any) -> str:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": "gateway",
        "aud": "agent-service",
        "sub": "u-alice",
        "company_id": "acme-hvac",
        "iat": now,
        "exp": now + 30,
    }
    base.update(claims)
    return jwt.encode(
        {k: v for k, v in base.items() if v is not None}, DEV_INTERNAL_SECRET, algorithm="HS256"
    )


@pytest.mark.parametrize(
    ("make_token", "why"),
    [
        (lambda: None, "missing bearer token"),
        (lambda: "not-a-jwt", "malformed token"),
        (lambda: _token(exp=int(time.time()) - 120, iat=int(time.time()) - 150), "token expired"),
        (lambda: _token(aud="someone-else"), "token audience is not this service"),
        (lambda: _token(iss="intruder"), "unknown token issuer"),
        (lambda: _token(company_id=None), "token lacks the 'company_id' claim"),
        (lambda: _token(sub=None), "token lacks the 'sub' claim"),
        (lambda: _token(exp=int(time.time()) + 3600), "internal tokens may live at most 60 s"),
        (
            lambda: jwt.encode(
                {"iss": "gateway"}, "a-different-secret-of-32-bytes-or-more", algorithm="HS256"
            ),
            "invalid token",
        ),
        (
            lambda: jwt.encode({"iss": "gateway", "aud": "agent-service"}, "", algorithm="none"),
            "token algorithm not allowed",
        ),
        (lambda: "x" * 5000, "token too large"),
    ],
)
async def test_bad_tokens_are_401(
    agent_url: str, make_token: Callable[[], str | None], why: str
) -> None:
    # tokens are minted when the test runs, not at collection: a long suite would expire them
    result = await stream_chat(agent_url, make_token(), "How many technicians are active?")
    assert result.status == 401
    assert result.events[0]["error"]["code"] == "UNAUTHORIZED"
    assert result.events[0]["error"]["message"].startswith(why)


@pytest.mark.parametrize(
    ("user", "company"),
    [("u-bob", "acme-hvac"), ("u-alice", "bluepeak-plumbing"), ("u-bob", "bluepeak-plumbing")],
)
async def test_context_mismatch_is_403(agent_url: str, mint: Mint, user: str, company: str) -> None:
    # the token says alice@acme; the body claims someone else
    result = await stream_chat(agent_url, mint(), "hi", user=user, company=company)
    assert result.status == 403
    assert result.events[0]["error"]["code"] == "FORBIDDEN"


async def test_every_internal_route_needs_a_token(agent_url: str) -> None:
    async with aiohttp.ClientSession() as s:
        for method, path in [
            ("POST", "/internal/chat"),
            ("GET", "/internal/conversations"),
            ("GET", "/internal/conversations/conv-1"),
            ("DELETE", "/internal/conversations/conv-1"),
        ]:
            async with s.request(method, agent_url + path) as r:
                assert r.status == 401, path
                assert (await r.json())["error"]["code"] == "UNAUTHORIZED"


async def test_unknown_route_and_method_are_json(agent_url: str) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(agent_url + "/nope") as r:
            assert (r.status, (await r.json())["error"]["code"]) == (404, "NOT_FOUND")
        async with s.get(agent_url + "/internal/chat/stream") as r:
            assert (r.status, (await r.json())["error"]["code"]) == (405, "METHOD_NOT_ALLOWED")


async def test_request_id_is_echoed_or_generated(agent_url: str, mint: Mint) -> None:
    result = await stream_chat(agent_url, None, "hi", headers={"X-Request-ID": "req-abcdef123"})
    assert result.events[0]["error"]["request_id"] == "req-abcdef123"
    result = await stream_chat(
        agent_url, None, "hi", headers={"X-Request-ID": "bad id with spaces"}
    )
    assert result.events[0]["error"]["request_id"] != "bad id with spaces"
    assert len(result.events[0]["error"]["request_id"]) == 32


def test_issuer_keys_that_cannot_verify_are_refused_at_start(tmp_path: Any) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from pydantic import ValidationError

    from agent_service.settings import AgentSettings

    rsa_public = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    for key, why in [(rsa_public, "EC P-256 / Ed25519"), ("short", "shorter than 32 bytes")]:
        with pytest.raises(ValidationError, match=why):
            AgentSettings(data_dir=tmp_path, internal_issuers={"billing": key})
