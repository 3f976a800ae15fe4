"""Non-streaming chat, conversations, dev tokens, health, CORS and settings safety."""

from __future__ import annotations

import os
from typing import Any

import aiohttp
import pytest
from pydantic import ValidationError
from support.gateway_harness import (
    FakeUpstream,
    Refuse,
    gateway_settings,
    running_gateway,
    sql_answer,
)

from gateway.app import create_app
from gateway.identity import contract_id
from gateway.settings import DEV_INTERNAL_SECRET, GatewaySettings


async def request(method: str, url: str, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
    async with aiohttp.ClientSession() as s, s.request(method, url, **kwargs) as resp:
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, dict(resp.headers), body


async def test_complete_answers_with_json(upstream: FakeUpstream) -> None:
    upstream.script = sql_answer("conv-3")
    async with running_gateway(gateway_settings(upstream.url)) as gw:
        status, headers, body = await request(
            "POST",
            f"{gw.url}/api/chat/complete",
            json={"message": "How many?", "conversation_id": "conv-3"},
            headers=gw.auth(),
        )
    assert status == 200
    assert "RateLimit" in headers
    assert body["answer"] == "There are 4."
    assert body["conversation_id"] == "conv-3"
    assert body["route"] == "sql"
    assert body["stats"]["row_count"] == 1
    assert body["tools"][0]["summary"] == "1 row"
    (seen,) = [r for r in upstream.requests if r.path == "/internal/chat"]
    assert seen.body["conversation"]["user_id"] == "u-alice"


@pytest.mark.parametrize(
    ("refusal", "status", "code"),
    [
        (Refuse(409, "CONVERSATION_BUSY", "Busy."), 409, "CONVERSATION_BUSY"),
        (Refuse(400, "INVALID_REQUEST", "Bad."), 400, "INVALID_REQUEST"),
        # The agent refusing the gateway's own internal token is not the user's fault.
        (Refuse(401, "UNAUTHORIZED", "bad internal token"), 502, "UPSTREAM_PROTOCOL_ERROR"),
        (Refuse(503, "UPSTREAM_UNAVAILABLE", "down"), 503, "UPSTREAM_UNAVAILABLE"),
        (Refuse(500, "INTERNAL", "bug"), 502, "INTERNAL"),
    ],
)
async def test_complete_maps_upstream_refusals(
    upstream: FakeUpstream, refusal: Refuse, status: int, code: str
) -> None:
    upstream.script = [refusal]
    async with running_gateway(gateway_settings(upstream.url)) as gw:
        got, _, body = await request(
            "POST", f"{gw.url}/api/chat/complete", json={"message": "hi"}, headers=gw.auth()
        )
    assert (got, body["error"]["code"]) == (status, code)


async def test_conversations_list_history_and_delete(upstream: FakeUpstream) -> None:
    async with running_gateway(gateway_settings(upstream.url)) as gw:
        base = f"{gw.url}/api/conversations"
        status, _, listed = await request(
            "GET", base, headers=gw.auth("u-bob", "bluepeak-plumbing")
        )
        assert status == 200
        assert listed["conversations"][0]["id"] == "conv-known"
        status, _, history = await request("GET", f"{base}/conv-known", headers=gw.auth())
        assert status == 200
        assert [m["role"] for m in history["messages"]] == ["user", "assistant"]
        status, _, missing = await request("GET", f"{base}/conv-other", headers=gw.auth())
        assert (status, missing["error"]["code"]) == (404, "NOT_FOUND")
        status, _, _ = await request("GET", f"{base}/..%2F..%2Fetc", headers=gw.auth())
        assert status == 404
        status, _, _ = await request("DELETE", f"{base}/conv-known", headers=gw.auth())
        assert status == 204
        status, _, _ = await request("DELETE", f"{base}/conv-other", headers=gw.auth())
        assert status == 404
        status, _, _ = await request("GET", base)
        assert status == 401
    identities = {(r.path, r.method): r.headers["authorization"][0] for r in upstream.requests}
    assert all(value.startswith("Bearer ") for value in identities.values())


async def test_dev_users_and_tokens(upstream: FakeUpstream) -> None:
    upstream.script = sql_answer()
    async with running_gateway(gateway_settings(upstream.url)) as gw:
        status, _, users = await request("GET", f"{gw.url}/auth/dev-users")
        assert status == 200
        ids = {(u["user_id"], u["company_id"]) for u in users["users"]}
        assert ids == {
            ("u-alice", "acme-hvac"),
            ("u-dave", "acme-hvac"),
            ("u-bob", "bluepeak-plumbing"),
            ("u-carol", "citywide-electric"),
        }
        status, _, minted = await request(
            "POST",
            f"{gw.url}/auth/dev-token",
            json={"user_id": "u-carol", "company_id": "citywide-electric"},
        )
        assert status == 200
        status, _, _ = await request(
            "POST",
            f"{gw.url}/api/chat/complete",
            json={"message": "hi"},
            headers={"Authorization": f"Bearer {minted['token']}"},
        )
        assert status == 200
        status, _, refused = await request(
            "POST",
            f"{gw.url}/auth/dev-token",
            json={"user_id": "u-carol", "company_id": "acme-hvac"},
        )
        assert (status, refused["error"]["code"]) == (403, "FORBIDDEN")
    assert upstream.requests[-1].body["conversation"]["company_id"] == "citywide-electric"


def production(**overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        "env": "production",
        "internal_key": "a-real-internal-secret-of-enough-length-0123",
        "jwt_jwks_url": "https://id.example/.well-known/jwks.json",
        "jwt_algorithms": "RS256",
    }
    values.update(overrides)
    return GatewaySettings(**values)


def test_production_refuses_development_secrets() -> None:
    with pytest.raises(ValidationError, match="GATEWAY_INTERNAL_KEY is the development secret"):
        production(internal_key=DEV_INTERNAL_SECRET)
    with pytest.raises(ValidationError, match="GATEWAY_JWT_JWKS_URL"):
        production(jwt_jwks_url=None, jwt_algorithms="HS256")
    with pytest.raises(ValidationError, match="GATEWAY_DEV_AUTH is development only"):
        production(dev_auth=True)
    with pytest.raises(ValidationError, match="'\\*' is not allowed"):
        GatewaySettings(cors_origins="*")
    settings = production()
    assert not settings.dev_auth_enabled
    assert not settings.ws_query_token_enabled
    assert settings.json_logs
    assert settings.jwt_config().hs256_secret is None
    assert settings.cors_origins == []
    assert production(cors_origins="https://app.example").cors_origins == ["https://app.example"]


async def test_production_has_no_dev_routes(upstream: FakeUpstream) -> None:
    app = create_app(production(agent_url=upstream.url))
    paths = {resource.canonical for resource in app.router.resources()}
    assert "/auth/dev-token" not in paths
    assert "/auth/dev-users" not in paths
    assert "/api/chat" in paths


async def test_health_readiness_and_cors(upstream: FakeUpstream) -> None:
    settings = gateway_settings(upstream.url, cors_origins="https://app.example")
    async with running_gateway(settings) as gw:
        for path in ("/health", "/healthz", "/ready", "/readyz"):
            assert (await request("GET", f"{gw.url}{path}"))[0] == 200, path
        upstream.ready = False
        for path in ("/ready", "/readyz"):
            status, _, body = await request("GET", f"{gw.url}{path}")
            assert (status, body["status"]) == (503, "upstream_unavailable")
        assert (await request("GET", f"{gw.url}/health"))[0] == 200  # liveness: still alive
        preflight = {
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        }
        status, headers, _ = await request("OPTIONS", f"{gw.url}/api/chat", headers=preflight)
        assert status == 204
        assert headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert "POST" in headers["Access-Control-Allow-Methods"]
        assert "Authorization" in headers["Access-Control-Allow-Headers"]
        assert "Access-Control-Allow-Credentials" not in headers
        evil = {**preflight, "Origin": "https://evil.example"}
        status, headers, _ = await request("OPTIONS", f"{gw.url}/api/chat", headers=evil)
        assert "Access-Control-Allow-Origin" not in headers
        status, headers, _ = await request(
            "GET", f"{gw.url}/healthz", headers={"Origin": "https://app.example"}
        )
        assert headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert "X-Request-ID" in headers["Access-Control-Expose-Headers"]


async def test_token_ids_outside_the_contract_pattern_are_served_as_safe_ids(
    upstream: FakeUpstream,
) -> None:
    upstream.script = sql_answer()
    async with running_gateway(gateway_settings(upstream.url)) as gw:
        odd = {"Authorization": f"Bearer {gw.token('auth0|12345', 'acme-hvac')}"}
        for method, path, kwargs in [
            ("POST", "/api/chat/stream", {"json": {"message": "hi"}}),
            ("POST", "/api/chat/complete", {"json": {"message": "hi"}}),
            ("GET", "/api/conversations", {}),
        ]:
            status, _, _ = await request(method, gw.url + path, headers=odd, **kwargs)
            assert status == 200, path
    users = {r.body["conversation"]["user_id"] for r in upstream.requests if r.body}
    assert users == {contract_id("auth0|12345")}


def test_the_default_is_production_and_refuses_the_committed_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A deployment that forgets GATEWAY_ENV gets production, which refuses to start on the
    keys committed to this repository."""
    for name in [n for n in os.environ if n.startswith("GATEWAY_")]:
        monkeypatch.delenv(name)
    with pytest.raises(ValidationError, match="GATEWAY_INTERNAL_KEY is the development secret"):
        GatewaySettings()
    assert production().env == "production"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::"])
def test_development_binds_loopback_only(host: str) -> None:
    with pytest.raises(ValidationError, match="binds loopback only"):
        GatewaySettings(env="development", host=host)


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.1:8000", 200),
        ("localhost", 200),
        ("[::1]:8000", 200),
        ("attacker.example", 403),
        ("attacker.example:8000", 403),
        ("127.0.0.1.attacker.example", 403),
        ("", 403),
    ],
)
async def test_development_answers_only_local_host_names(
    upstream: FakeUpstream, host: str, status: int
) -> None:
    """DNS rebinding: a page on attacker.example re-resolved to 127.0.0.1 sends its own Host;
    it must not get a dev token (nor anything else) from a developer's gateway."""
    async with running_gateway(gateway_settings(upstream.url)) as gw:
        got, _, body = await request(
            "POST",
            f"{gw.url}/auth/dev-token",
            json={"user_id": "u-alice", "company_id": "acme-hvac"},
            headers={"Host": host},
        )
    assert got == status, body
    if status == 403:
        assert body["error"]["code"] == "FORBIDDEN"
        assert "token" not in body
