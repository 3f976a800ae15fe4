"""The agent service's settings: one pydantic-settings class, `AGENT_` prefix."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent_service.internal_auth import algorithm_for_key

DEV_INTERNAL_SECRET = "dev-internal-secret-change-me-32bytes+"
"""The development key shared with the gateway (issuer `gateway`); refused in production."""
MIN_SECRET_BYTES = 32


class AgentSettings(BaseSettings):
    """Every knob of the agent service; see docs/configuration.md for the table."""

    model_config = SettingsConfigDict(env_prefix="AGENT_", extra="ignore", frozen=True)

    env: Literal["development", "production", "test"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=8001, ge=0, le=65535)
    data_dir: Path = Path("var/agent")
    """Where the demo database, the document stores and conversation memory live."""
    seed_on_start: bool = True
    """Seed the demo data and documents on start-up when they are missing."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_json: bool | None = None
    """JSON logs; defaults to on outside development."""
    api_docs: bool | None = None
    """Swagger UI at `/docs`; defaults to off in production."""

    # internal tokens: issuer -> key (an HS256 secret, or a PEM public key for ES256/EdDSA)
    internal_issuers: dict[str, SecretStr] = Field(
        default_factory=lambda: {"gateway": SecretStr(DEV_INTERNAL_SECRET)}
    )
    internal_token_leeway_s: int = Field(default=5, ge=0, le=30)
    internal_token_max_bytes: int = Field(default=4096, ge=256)
    internal_require_bound_tokens: bool = False
    """Refuse internal tokens not bound to their request (no `htm`/`htu` claims, such as
    `agent-service mint-token`'s); `AgentClient` always binds them."""

    # request and stream limits
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    heartbeat_s: float = Field(default=15.0, gt=0)
    run_timeout_s: float = Field(default=120.0, gt=0)
    """A run that has not finished after this long ends with RUN_TIMEOUT."""
    stall_timeout_s: float = Field(default=30.0, gt=0)
    """A stream whose reader has not taken a write for this long is cancelled."""
    keepalive_s: float = Field(default=75.0, gt=0, le=3600)
    """How long an idle client connection stays open (uvicorn's keep-alive). Longer than the
    gateway's pool keeps an idle connection (15 s), so the pool always drops it first: a request
    never meets a connection the server is closing."""
    stream_buffer_events: int = Field(default=512, ge=16)
    """Unused since frames are written as the run makes them (no queue per stream); accepted."""

    # model
    provider: Literal["offline", "openai"] = "offline"
    offline_pace_ms: float = Field(default=0.0, ge=0, le=2000)
    """Delay between offline tokens, to see streaming at a human pace (0 = as fast as possible)."""

    # SQL path
    sql_max_rows: int = Field(default=200, ge=1, le=10_000)
    sql_max_result_bytes: int = Field(default=256 * 1024, ge=1024)
    sql_timeout_s: float = Field(default=2.0, gt=0, le=60)
    sql_max_attempts: int = Field(default=3, ge=1, le=5)
    sql_event_max_rows: int = Field(default=50, ge=0, le=1000)
    """Rows of a result sent to the client with the SQL tool's `tool_end` (0: none)."""
    sql_event_max_bytes: int = Field(default=8192, ge=256, le=1024 * 1024)
    sql_max_expanded_nodes: int = Field(default=20_000, ge=100, le=1_000_000)
    """Largest syntax tree a query may have once its WITH queries and subqueries are inlined."""
    sql_engine_workers: int = Field(default=2, ge=1, le=32)
    """SQLite: worker processes that run model SQL (at most this many queries at once)."""
    sql_engine_memory_mb: int = Field(default=256, ge=16, le=8192)
    """SQLite: memory one query may take in its worker before the worker is stopped."""

    # retrieval
    rag_top_k: int = Field(default=4, ge=1, le=20)

    # memory
    history_turns: int = Field(default=20, ge=0, le=200)
    """Previous turns handed to the provider."""
    sqlite_busy_timeout_s: float = Field(default=5.0, gt=0, le=60)
    """Embedded memory: longest wait for another process's write lock before a write fails."""
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    """Embedded memory: `PRAGMA synchronous` (WAL). NORMAL survives the process dying, FULL
    also a power cut or kernel crash, at an fsync per commit."""
    ready_timeout_s: float = Field(default=1.0, gt=0, le=30)
    """`/ready` answers 503 unless the conversation store takes a write within this long."""
    busy_wait_s: float = Field(default=2.0, ge=0, le=30)
    """A message to a conversation whose reply is still ending waits this long before 409."""

    # --- PostgreSQL (production backends); see docs/deployment.md#postgresql ------------------
    database_url: SecretStr | None = None
    """Set: business data, documents, memory, conversations and busy runs live in PostgreSQL."""
    sql_database_url: SecretStr | None = None
    """The SQL path's own login (the read-only role); defaults to `database_url` as that role."""
    sql_reader_role: str = Field(default="agent_sql_reader", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    """The role the SQL path logs in as when `sql_database_url` is not set."""
    pg_migrate_on_start: bool = True
    """Apply pending migrations on start-up (under an advisory lock; replicas may race)."""
    pg_pool_min: int = Field(default=1, ge=0, le=100)
    pg_pool_max: int = Field(default=10, ge=1, le=200)
    """Connections per pool: one for documents, conversations and runs, one for memory."""
    pg_sql_pool_max: int = Field(default=5, ge=1, le=200)
    """Connections of the SQL path's read-only role."""
    pg_pool_timeout_s: float = Field(default=5.0, gt=0, le=120)
    """Longest wait for a pooled connection (and for the server at start-up)."""
    pg_down_wait_s: float = Field(default=0.5, gt=0, le=120)
    """Longest wait for a pooled connection while PostgreSQL is known down (then 503)."""
    pg_reconnect_s: float = Field(default=2.0, ge=0.1, le=600)
    """How long a pool keeps retrying a lost connection with backoff before the next request's
    connect is tried at once (bounds the recovery after an outage)."""
    run_lease_s: float = Field(default=5.0, ge=1, le=3600)
    """How long a crashed replica's conversation stays busy (renewed every fifth of it)."""

    # --- the OpenAI-compatible model (AGENT_PROVIDER=openai); see docs/real-model.md -----------
    # Read only when the provider is `openai`; the offline default needs none of them.
    openai_base_url: str = "https://api.openai.com/v1"
    """Any OpenAI-compatible Chat Completions endpoint (vLLM, Ollama, llama.cpp, LiteLLM…)."""
    openai_api_key: SecretStr | None = None
    """Required for api.openai.com; local servers usually accept anything (`EMPTY` is sent)."""
    model_name: str = Field(default="gpt-4o-mini", min_length=1)
    model_classifier: str | None = None
    """Model for `classify` (defaults to `model_name`)."""
    model_sql: str | None = None
    """Model that writes SQL in `sql_agent` (defaults to `model_name`)."""
    model_answer: str | None = None
    """Model that writes the streamed answer in `finalize` (defaults to `model_name`)."""
    model_temperature: float = Field(default=0.0, ge=0, le=2)
    model_answer_max_tokens: int = Field(default=1024, ge=16, le=32_768)
    model_structured_output: Literal["function_calling", "json_schema", "json_mode"] = (
        "function_calling"
    )
    """How `classify` asks for its structured route; a forced tool call works on most servers."""
    model_route_min_confidence: float = Field(default=0.6, ge=0, le=1)
    """Below this router confidence (or on an unusable routing reply) the default route is taken:
    SQL when the question names a data word, documents otherwise (docs/real-model.md)."""
    model_startup_check: bool = True
    """At start-up, send the model server one tiny request in the `model_structured_output`
    format; a server that rejects the format stops the service with a clear message (one it
    cannot reach is only logged: it may come up later)."""
    model_stream_usage: bool = True
    """Ask for token usage at the end of streams (`stream_options.include_usage`)."""
    model_connect_timeout_s: float = Field(default=5.0, gt=0, le=120)
    model_timeout_s: float = Field(default=30.0, gt=0, le=600)
    """Deadline of one non-streamed step (`classify`, each SQL draft), its retries included."""
    model_stall_timeout_s: float = Field(default=20.0, gt=0, le=600)
    """Longest silence allowed in a streamed answer, before the first chunk and between chunks."""
    model_first_token_timeout_s: float = Field(default=10.0, gt=0, le=600)
    """A streamed answer with no text this long after its step began ends with MODEL_TIMEOUT
    (retries of that step included): the user hears within seconds that the model is silent."""
    model_max_retries: int = Field(default=2, ge=0, le=10)
    """Retries of a retryable failure (429, 5xx, timeouts, lost connections) before any token."""
    model_retry_base_s: float = Field(default=0.5, ge=0, le=30)
    """First backoff delay; doubled each retry, with jitter, capped by `model_retry_max_s`."""
    model_retry_max_s: float = Field(default=8.0, ge=0, le=120)
    """Cap on one backoff delay, a server's `Retry-After` included."""
    model_history_tokens: int = Field(default=2000, ge=0, le=200_000)
    """Budget (approximate tokens) of the previous turns sent with each model call."""
    model_prompt_rows: int = Field(default=50, ge=1, le=1000)
    """Result rows shown to the answering model (the rest are counted, not shown)."""
    model_prompt_chars: int = Field(default=24_000, ge=1000, le=1_000_000)
    """Cap on the data (rows or passages) framed into one answering prompt."""
    today: date | None = None
    """The date the model writes SQL against ("this month", "last week"); unset: the real date.
    The demo data ends on 2026-11-15: set `AGENT_TODAY=2026-11-15` to ask it about "now"."""

    # --- hybrid retrieval (optional); see docs/retrieval.md -------------------------------------
    embeddings_base_url: str | None = None
    """An OpenAI-compatible `/v1/embeddings` endpoint; set, SQLite document stores also keep
    chunk vectors (sqlite-vec) and fuse vector search with BM25. Unset: BM25 only."""
    embeddings_model: str = Field(default="text-embedding-3-small", min_length=1)
    embeddings_dimensions: int = Field(default=256, ge=8, le=4096)
    embeddings_api_key: SecretStr | None = None
    """Defaults to `openai_api_key`; local servers usually accept anything."""
    embeddings_timeout_s: float = Field(default=10.0, gt=0, le=120)

    @model_validator(mode="after")
    def _refuse_openai_without_key(self) -> Self:
        if (
            self.provider == "openai"
            and self.openai_api_key is None
            and "api.openai.com" in self.openai_base_url
        ):
            raise ValueError(
                "AGENT_OPENAI_API_KEY is required when AGENT_OPENAI_BASE_URL is api.openai.com"
            )
        return self

    @model_validator(mode="after")
    def _check_pools(self) -> Self:
        if self.pg_pool_min > self.pg_pool_max:
            raise ValueError("AGENT_PG_POOL_MIN must not exceed AGENT_PG_POOL_MAX")
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> Self:
        if self.env == "production":
            for issuer, key in self.internal_issuers.items():
                if key.get_secret_value() == DEV_INTERNAL_SECRET:
                    raise ValueError(
                        f"AGENT_INTERNAL_ISSUERS: issuer {issuer!r} uses the development key; "
                        "set a real key outside development"
                    )
        if not self.internal_issuers:
            raise ValueError("AGENT_INTERNAL_ISSUERS must name at least one issuer")
        for issuer, key in self.internal_issuers.items():
            secret = key.get_secret_value()
            try:
                algorithm_for_key(secret)
            except Exception as exc:  # a bad PEM fails here once, not on every request
                raise ValueError(f"AGENT_INTERNAL_ISSUERS: the key of {issuer!r}: {exc}") from None
            if "-----BEGIN" not in secret and len(secret.encode()) < MIN_SECRET_BYTES:
                raise ValueError(
                    f"AGENT_INTERNAL_ISSUERS: the HS256 key of {issuer!r} is shorter than "
                    f"{MIN_SECRET_BYTES} bytes (RFC 7518 §3.2)"
                )
        return self

    @property
    def api_docs_enabled(self) -> bool:
        return self.api_docs if self.api_docs is not None else self.env != "production"

    @property
    def json_logs(self) -> bool:
        return self.log_json if self.log_json is not None else self.env != "development"

    @property
    def demo_db_path(self) -> Path:
        return self.data_dir / "demo.sqlite"

    @property
    def documents_dir(self) -> Path:
        return self.data_dir / "documents"

    @property
    def memory_db_path(self) -> Path:
        return self.data_dir / "memory.sqlite"
