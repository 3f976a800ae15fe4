"""The agent service's settings: one pydantic-settings class, `AGENT_` prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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

    # internal tokens: issuer -> key (an HS256 secret, or a PEM public key for ES256/EdDSA)
    internal_issuers: dict[str, SecretStr] = Field(
        default_factory=lambda: {"gateway": SecretStr(DEV_INTERNAL_SECRET)}
    )
    internal_token_leeway_s: int = Field(default=5, ge=0, le=30)
    internal_token_max_bytes: int = Field(default=4096, ge=256)

    # request and stream limits
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    heartbeat_s: float = Field(default=15.0, gt=0)
    run_timeout_s: float = Field(default=120.0, gt=0)
    """A run that has not finished after this long ends with RUN_TIMEOUT."""
    stall_timeout_s: float = Field(default=30.0, gt=0)
    """A stream whose reader has not taken an event for this long is cancelled."""
    stream_buffer_events: int = Field(default=512, ge=16)

    # model
    provider: Literal["offline", "openai"] = "offline"
    offline_pace_ms: float = Field(default=0.0, ge=0, le=2000)
    """Delay between offline tokens, to see streaming at a human pace (0 = as fast as possible)."""

    # SQL path
    sql_max_rows: int = Field(default=200, ge=1, le=10_000)
    sql_max_result_bytes: int = Field(default=256 * 1024, ge=1024)
    sql_timeout_s: float = Field(default=2.0, gt=0, le=60)
    sql_max_attempts: int = Field(default=3, ge=1, le=5)

    # retrieval
    rag_top_k: int = Field(default=4, ge=1, le=20)

    # memory
    history_turns: int = Field(default=20, ge=0, le=200)
    """Previous turns handed to the provider."""

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
            if "-----BEGIN" not in secret and len(secret.encode()) < MIN_SECRET_BYTES:
                raise ValueError(
                    f"AGENT_INTERNAL_ISSUERS: the HS256 key of {issuer!r} is shorter than "
                    f"{MIN_SECRET_BYTES} bytes (RFC 7518 §3.2)"
                )
        return self

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
