"""The gateway's settings: one `GatewaySettings` read from `GATEWAY_*` environment variables."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Final, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from gateway.auth import JwtConfig
from gateway.rate_limit import LimitsConfig
from gateway.relay import RelayConfig
from gateway.run_buffer import ResumeConfig

DEV_INTERNAL_SECRET: Final = "dev-internal-secret-change-me-32bytes+"
"""The internal-token key both tiers use in development; refused anywhere else."""
DEV_JWT_SECRET: Final = "dev-user-token-secret-change-me-not-for-production"
"""The HS256 key of the development user tokens; refused anywhere else."""
DEV_CORS_ORIGINS: Final = (
    "http://localhost:3000",
    "http://127.0.0.1:3000",
    "http://localhost:5173",
    "http://127.0.0.1:5173",
)

DEV_ALLOWED_HOSTS: Final = ("localhost", "127.0.0.1", "[::1]")
LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "::1", "localhost"})

CommaList = Annotated[list[str], NoDecode]


class GatewaySettings(BaseSettings):
    """Every knob of the gateway; `GATEWAY_<NAME>` in the environment sets `<name>`."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", frozen=True)

    env: Literal["development", "production"] = "production"
    """Production unless told otherwise: development trusts keys committed to this repository,
    so only `make run` (scripts/stack.py) asks for it, and it binds loopback only."""
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    log_level: str = "INFO"
    log_json: bool | None = None
    """JSON log lines; default: on outside development."""

    # upstream (the agent service)
    agent_url: str = "http://127.0.0.1:8001"
    agent_urls: CommaList = []
    """Several agent replicas (comma-separated): round-robin per call; overrides `agent_url`."""
    internal_issuer: str = "gateway"
    internal_key: SecretStr = SecretStr(DEV_INTERNAL_SECRET)
    internal_algorithm: Literal["HS256", "ES256", "EdDSA"] = "HS256"
    internal_token_ttl_s: Annotated[int, Field(ge=1, le=60)] = 30
    upstream_max_connections: Annotated[int, Field(ge=1)] = 256
    """Pool size toward the agent service; each open stream holds one connection."""
    upstream_connect_timeout_s: Annotated[float, Field(gt=0)] = 5.0
    upstream_sock_read_s: Annotated[float, Field(gt=0)] = 45.0
    """Longest silence tolerated from the agent (3 x its 15 s heartbeat)."""
    upstream_request_timeout_s: Annotated[float, Field(gt=0)] = 120.0
    """Whole-call limit of the non-streaming calls (streams have none)."""
    upstream_max_event_bytes: Annotated[int, Field(ge=1024)] = 1024 * 1024

    # user tokens (JWT)
    jwt_issuer: str = "agent-chat-dev"
    jwt_audience: str = "agent-chat"
    jwt_hs256_secret: SecretStr | None = SecretStr(DEV_JWT_SECRET)
    jwt_jwks_url: str | None = None
    jwt_algorithms: CommaList = ["HS256"]
    jwt_tenant_claim: str = "company_id"
    jwt_leeway_s: Annotated[int, Field(ge=0, le=300)] = 30
    jwt_max_token_bytes: Annotated[int, Field(ge=256)] = 8192
    jwt_max_lifetime_s: Annotated[int, Field(ge=60)] = 86_400
    """Longest user-token life accepted (`exp - iat`); longer-lived tokens are refused."""
    jwt_verified_cache_size: Annotated[int, Field(ge=0, le=1_000_000)] = 4096
    """Verified user tokens remembered per process (their time window is checked on every
    request); 0 verifies every request's token in full."""
    dev_token_ttl_s: Annotated[int, Field(ge=60)] = 3600

    # rate limits
    redis_url: str | None = None
    """Shared limits for several replicas; in-process limits when unset."""
    redis_prefix: str = "gw"
    redis_timeout_s: Annotated[float, Field(gt=0)] = 1.0
    redis_fail_open: bool = False
    limit_user_requests: Annotated[int, Field(ge=1)] = 30
    limit_user_window_s: Annotated[int, Field(ge=1)] = 60
    limit_user_conversation_requests: Annotated[int, Field(ge=1)] = 120
    """Conversation list/history/delete calls per user per `limit_user_window_s` (their own
    window, apart from chat requests)."""
    limit_company_requests: Annotated[int, Field(ge=1)] = 300
    limit_company_window_s: Annotated[int, Field(ge=1)] = 60
    limit_company_tokens: Annotated[int, Field(ge=1)] = 200_000
    limit_company_token_window_s: Annotated[int, Field(ge=1)] = 3600
    limit_run_reserve_tokens: Annotated[int, Field(ge=0)] = 2000
    """What a run the client cut short is charged at least (plus ~4 characters a token of its
    message): its prompt, the routing call and the model's work, whose usage never arrives."""
    limit_user_streams: Annotated[int, Field(ge=1)] = 3
    limit_lease_ttl_s: Annotated[float, Field(gt=0)] = 60.0

    # downstream transports
    heartbeat_s: Annotated[float, Field(gt=0)] = 15.0
    """Idle interval after which SSE sends a comment and WebSocket an app-level ping."""
    write_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    """A client that does not take a write within this long is cut off."""
    stream_buffer_events: Annotated[int, Field(ge=1)] = 64
    """Most events read from the agent ahead of a write (they go out in that one write)."""
    body_read_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    """A request body must arrive whole within this long (408 and the connection closed after);
    the caller is authenticated and admitted before it is read."""
    client_max_size: Annotated[int, Field(ge=1024)] = 64 * 1024
    """Largest accepted request body, in bytes (413 above)."""
    ai_sdk_max_body_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 2 * 1024 * 1024
    """Largest accepted body of `POST /api/chat`: `useChat` re-sends the whole conversation
    every turn, so it outgrows `client_max_size` after a few dozen turns."""
    transcript_max_body_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 2 * 1024 * 1024
    """Largest accepted body of `POST /api/agui` and `POST /v1/chat/completions`: like
    `useChat`, their clients send the whole conversation every turn."""
    openai_model: Annotated[str, Field(min_length=1, max_length=128)] = "agent-chat"
    """The model id `GET /v1/models` lists and `POST /v1/chat/completions` answers to."""
    api_docs: bool | None = None
    """`/docs` (Swagger UI) and `/openapi.json`; default: on in development only."""
    ws_max_msg_size: Annotated[int, Field(ge=1024)] = 64 * 1024
    """Largest accepted WebSocket message (close 1009 above)."""
    ws_max_per_user: Annotated[int, Field(ge=1)] = 5
    """Open /ws/chat sockets per user, counted per replica (close 1008 above)."""
    ws_auth_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    ws_max_unauthenticated_per_ip: Annotated[int, Field(ge=1)] = 16
    """/ws/chat sockets one peer address may hold while they wait for `auth` (429 at the
    upgrade above), per replica. Behind a proxy the peer is the proxy: raise it there."""
    ws_protocol_heartbeat_s: Annotated[float, Field(gt=0)] = 30.0
    """WebSocket ping-frame interval; a peer that misses the pong is closed."""
    ws_compress: bool = False
    """Accept permessage-deflate on /ws/chat when the client offers it (browsers do). Off by
    default: a token frame is a few dozen bytes, and compressing each doubled the gateway's CPU
    per token and kept about 70 KiB of zlib state per socket that had a turn."""
    ws_query_token: bool | None = None
    """Accept `?token=` on /ws/chat (seed compatibility); default: on in development only."""
    cors_origins: CommaList = list(DEV_CORS_ORIGINS)
    """Browser origins allowed for CORS and WebSocket `Origin`; never `*` (none by default
    outside development)."""
    cors_allow_credentials: bool = False
    shutdown_timeout_s: Annotated[float, Field(ge=0)] = 10.0
    resume: bool = True
    """Buffer each run of `/api/chat/stream`, `/api/chat` and `/ws/chat` so a client that lost
    its connection can resume it, and let it finish (and be saved) without its client."""
    resume_retention_s: Annotated[float, Field(ge=1, le=86_400)] = 600.0
    """How long a run's events stay resumable after it ends."""
    resume_max_runs: Annotated[int, Field(ge=1)] = 1000
    """Runs kept resumable in process memory (oldest dropped first); not a limit with Redis."""
    resume_max_events: Annotated[int, Field(ge=100)] = 20_000
    """Events kept per run; a run past it ends with an INTERNAL error (a guard, not a need)."""
    resume_flush_ms: Annotated[int, Field(ge=1, le=5000)] = 100
    """With Redis: a run's new events go out in one append at most this often (never one
    round trip per token)."""
    drain_s: Annotated[float, Field(ge=0, le=300)] = 0.0
    """After SIGTERM, keep listening this long answering new requests (and /readyz) with 503
    while open streams go on, so a load balancer sees the replica leave; 0: stop listening at
    once (new connections are refused at TCP level)."""
    metrics_token: SecretStr | None = None
    """`GET /metrics` needs `Authorization: Bearer <this>`; unset: /metrics is served only in
    development (loopback), and not at all in production."""
    dev_auth: bool | None = None
    """`/auth/dev-users` and `/auth/dev-token`; development only (refused elsewhere)."""
    dev_allowed_hosts: CommaList = list(DEV_ALLOWED_HOSTS)
    """In development, the `Host` names (port ignored) requests may carry; any other is refused
    with 421, so a DNS-rebinding page cannot reach a developer's gateway (or mint dev tokens)."""

    @field_validator(
        "jwt_algorithms", "cors_origins", "agent_urls", "dev_allowed_hosts", mode="before"
    )
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("agent_url", "agent_urls")
    @classmethod
    def _http_urls(cls, value: str | list[str]) -> str | list[str]:
        for url in [value] if isinstance(value, str) else value:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"agent URLs must be http(s) URLs, got {url!r}")
        return value

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> GatewaySettings:
        if self.metrics_token is not None and len(self.metrics_token.get_secret_value()) < 16:
            raise ValueError("GATEWAY_METRICS_TOKEN must be at least 16 characters")
        if "*" in self.cors_origins:
            raise ValueError("GATEWAY_CORS_ORIGINS must list origins; '*' is not allowed")
        if self.env == "development":
            if self.host not in LOOPBACK_HOSTS:
                raise ValueError(
                    f"refusing to start in development on {self.host!r}: development mode "
                    "trusts public keys and binds loopback only (127.0.0.1, ::1, localhost)"
                )
            return self
        if "cors_origins" not in self.model_fields_set:
            # The localhost defaults are for development; production lists its origins.
            object.__setattr__(self, "cors_origins", [])
        problems = []
        if self.internal_key.get_secret_value() == DEV_INTERNAL_SECRET:
            problems.append("GATEWAY_INTERNAL_KEY is the development secret")
        if self._user_token_secret() is None and not self.jwt_jwks_url:
            problems.append("set GATEWAY_JWT_JWKS_URL (or a real GATEWAY_JWT_HS256_SECRET)")
        if self.dev_auth:
            problems.append("GATEWAY_DEV_AUTH is development only")
        if problems:
            raise ValueError(f"refusing to start in {self.env}: " + "; ".join(problems))
        return self

    def _user_token_secret(self) -> str | None:
        secret = self.jwt_hs256_secret.get_secret_value() if self.jwt_hs256_secret else None
        if not any(alg.startswith("HS") for alg in self.jwt_algorithms):
            return None
        if not secret or (secret == DEV_JWT_SECRET and self.env != "development"):
            # Outside development the built-in secret is as good as none.
            return None
        return secret

    @property
    def agent_base_urls(self) -> tuple[str, ...]:
        """The agent replicas calls are spread over: `agent_urls`, else the one `agent_url`."""
        return tuple(self.agent_urls) if self.agent_urls else (self.agent_url,)

    @property
    def is_development(self) -> bool:
        """Whether development conveniences (dev tokens, text logs, query tokens) apply."""
        return self.env == "development"

    @property
    def dev_auth_enabled(self) -> bool:
        """Whether the demo-user token endpoints are routed (they need an HS256 user-token key)."""
        wanted = self.is_development if self.dev_auth is None else self.dev_auth
        return wanted and "HS256" in self.jwt_algorithms and self._user_token_secret() is not None

    @property
    def api_docs_enabled(self) -> bool:
        """Whether `/docs` and `/openapi.json` are routed."""
        return self.is_development if self.api_docs is None else self.api_docs

    @property
    def ws_query_token_enabled(self) -> bool:
        """Whether /ws/chat takes a token from the query string."""
        return self.is_development if self.ws_query_token is None else self.ws_query_token

    @property
    def resume_enabled(self) -> bool:
        """Whether runs are buffered for resuming."""
        return self.resume

    def resume_config(self) -> ResumeConfig:
        """The run buffer's limits."""
        return ResumeConfig(
            retention_s=self.resume_retention_s,
            max_runs=self.resume_max_runs,
            max_events=self.resume_max_events,
            flush_s=self.resume_flush_ms / 1000,
        )

    @property
    def json_logs(self) -> bool:
        """Whether log lines are JSON."""
        return not self.is_development if self.log_json is None else self.log_json

    def jwt_config(self) -> JwtConfig:
        """The user-token verification settings."""
        return JwtConfig(
            issuer=self.jwt_issuer,
            audience=self.jwt_audience,
            tenant_claim=self.jwt_tenant_claim,
            leeway_s=self.jwt_leeway_s,
            hs256_secret=self._user_token_secret(),
            jwks_url=self.jwt_jwks_url,
            algorithms=tuple(self.jwt_algorithms),
            max_token_bytes=self.jwt_max_token_bytes,
            max_lifetime_s=self.jwt_max_lifetime_s,
            verified_cache_size=self.jwt_verified_cache_size,
        )

    def relay_config(self) -> RelayConfig:
        """The relay limits of every run: heartbeats, write deadline, buffer."""
        return RelayConfig(
            heartbeat_s=self.heartbeat_s,
            write_timeout_s=self.write_timeout_s,
            buffer_events=self.stream_buffer_events,
        )

    def conversation_limits_config(self) -> LimitsConfig:
        """The limits of the conversation routes: their own user and company request windows
        (the company's the same size as for chat)."""
        return replace(self.limits_config(), user_requests=self.limit_user_conversation_requests)

    def limits_config(self) -> LimitsConfig:
        """The rate-limit settings."""
        return LimitsConfig(
            user_requests=self.limit_user_requests,
            user_window_s=self.limit_user_window_s,
            company_requests=self.limit_company_requests,
            company_window_s=self.limit_company_window_s,
            company_tokens=self.limit_company_tokens,
            company_token_window_s=self.limit_company_token_window_s,
            user_streams=self.limit_user_streams,
            lease_ttl_s=self.limit_lease_ttl_s,
        )
