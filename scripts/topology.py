"""Run the production-like topology on one machine: agent and gateway replicas, Postgres, Redis.

`make prod-local` calls this. It creates the database if it is missing, migrates it with
`agent-service migrate` (a deploy job), starts two agent service replicas (8101, 8102) sharing
that database (the first to start seeds the demo data into an empty database, once, under the
migration lock) and two gateway replicas (8100, 8200) sharing Redis, each gateway spreading its
calls over both agent replicas, waits until all four are healthy, prints the URLs, and stops
everything on Ctrl-C. `--check` starts, verifies and exits.

The same code runs the topology in tests, on other ports and a throwaway database:
`Topology(TopologyConfig(...))` is a context manager; `restart(replica)` restarts one process.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Final, Literal, Self
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
Role = Literal["agent", "gateway"]

PG_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
REDIS_START = (
    'redis-server --daemonize yes --bind 127.0.0.1 --port {port} --save "" --appendonly no'
)


class TopologyError(Exception):
    """The topology could not be prepared or started; the message says what and how to fix it."""


@dataclass(frozen=True, slots=True)
class TopologyConfig:
    """Where every replica listens and which servers they share."""

    agent_ports: tuple[int, ...] = (8101, 8102)
    gateway_ports: tuple[int, ...] = (8100, 8200)
    host: str = "127.0.0.1"
    pg_server: str = "postgresql://postgres@127.0.0.1:5432"
    """The PostgreSQL server (no database part); its user must be allowed to create databases."""
    database: str = "agent_local"
    internal_key: str = field(default_factory=lambda: secrets.token_hex(32), repr=False)
    """The internal-token key both tiers share; fresh per run (production mode refuses the
    repository's development key)."""
    user_token_secret: str = field(default_factory=lambda: secrets.token_hex(32), repr=False)
    """The gateways' HS256 user-token key; fresh per run, printed tokens are signed with it."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "gw"
    agent_env: Mapping[str, str] = field(default_factory=dict)
    """Extra AGENT_* settings for every agent replica (tests: pacing, leases)."""
    gateway_env: Mapping[str, str] = field(default_factory=dict)
    """Extra GATEWAY_* settings for every gateway replica (tests: limits)."""
    log_dir: Path | None = None
    """One log file per replica here; None: the replicas write to this terminal."""

    @property
    def database_url(self) -> str:
        """The agent replicas' `AGENT_DATABASE_URL`."""
        return f"{self.pg_server.rstrip('/')}/{self.database}"

    @property
    def agent_urls(self) -> list[str]:
        """The agent replicas' base URLs, in the order the gateways use them."""
        return [f"http://{self.host}:{port}" for port in self.agent_ports]

    @property
    def gateway_urls(self) -> list[str]:
        """The gateway replicas' base URLs."""
        return [f"http://{self.host}:{port}" for port in self.gateway_ports]


def agent_settings(config: TopologyConfig, port: int) -> dict[str, str]:
    """The environment of one agent replica (the same names docker-compose.yml sets)."""
    return {
        "AGENT_ENV": "production",
        "AGENT_INTERNAL_ISSUERS": json.dumps({"gateway": config.internal_key}),
        "AGENT_INTERNAL_REQUIRE_BOUND_TOKENS": "true",
        "AGENT_HOST": config.host,
        "AGENT_PORT": str(port),
        "AGENT_DATABASE_URL": config.database_url,
        # The migrate job ran before any replica started, so the start-up check under the
        # migration lock applies nothing; it seeds the demo data once, into an empty database.
        "AGENT_PG_MIGRATE_ON_START": "true",
        "AGENT_SEED_ON_START": "true",
        "AGENT_LOG_JSON": "true",
        **config.agent_env,
    }


def gateway_settings(config: TopologyConfig, port: int) -> dict[str, str]:
    """The environment of one gateway replica (the same names docker-compose.yml sets)."""
    return {
        "GATEWAY_ENV": "production",
        "GATEWAY_INTERNAL_KEY": config.internal_key,
        "GATEWAY_JWT_HS256_SECRET": config.user_token_secret,
        "GATEWAY_HOST": config.host,
        "GATEWAY_PORT": str(port),
        "GATEWAY_AGENT_URLS": ",".join(config.agent_urls),
        "GATEWAY_REDIS_URL": config.redis_url,
        "GATEWAY_REDIS_PREFIX": config.redis_prefix,
        "GATEWAY_LOG_JSON": "true",
        **config.gateway_env,
    }


def job_settings(config: TopologyConfig) -> dict[str, str]:
    """The environment of the one-off migrate job."""
    return {
        "AGENT_ENV": "production",
        "AGENT_INTERNAL_ISSUERS": json.dumps({"gateway": config.internal_key}),
        "AGENT_DATABASE_URL": config.database_url,
        **config.agent_env,
    }


@dataclass(slots=True)
class Replica:
    """One process of the topology, restartable."""

    name: str
    role: Role
    argv: list[str]
    env: dict[str, str]
    health_url: str
    log_path: Path | None
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """The replica's base URL."""
        parts = urlsplit(self.health_url)
        return f"{parts.scheme}://{parts.netloc}"

    def start(self) -> None:
        """Start the process (does not wait for it to be healthy)."""
        if self.process is not None and self.process.poll() is None:
            raise TopologyError(f"{self.name} is already running")
        parts = urlsplit(self.health_url)
        if _port_open(parts.hostname or "127.0.0.1", parts.port or 80):
            # Else the health check would pass against whatever holds the port.
            raise TopologyError(f"{self.name}: {parts.netloc} is already in use by another process")
        if self.log_path is not None:
            self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv,
            env={**os.environ, **self.env},
            stdout=self._log,
            stderr=subprocess.STDOUT if self._log is not None else None,
            cwd=ROOT,
        )

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM (a graceful drain), then SIGKILL after `timeout_s`; idempotent."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def running(self) -> bool:
        """Whether the process is alive."""
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the replica's log file ("" when it logs to the terminal)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def wait_healthy(replicas: Sequence[Replica], timeout_s: float = 60.0) -> None:
    """Wait until every replica answers its health URL with 200; TopologyError otherwise."""
    pending = list(replicas)
    deadline = time.monotonic() + timeout_s
    while pending:
        for replica in list(pending):
            if not replica.running():
                code = replica.process.returncode if replica.process else None
                raise TopologyError(
                    f"{replica.name} exited with code {code} before it was healthy" + _tail(replica)
                )
            if _answers(replica.health_url):
                pending.remove(replica)
        if not pending:
            return
        if time.monotonic() > deadline:
            names = ", ".join(f"{r.name} ({r.health_url})" for r in pending)
            raise TopologyError(
                f"not healthy within {timeout_s:.0f} s: {names}" + _tail(pending[0])
            )
        time.sleep(0.1)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _tail(replica: Replica) -> str:
    tail = replica.log_tail()
    return f"\n--- last lines of {replica.log_path} ---\n{tail}" if tail else ""


class Topology:
    """The replicas of one configuration: prepare the database, start, restart, stop."""

    def __init__(self, config: TopologyConfig, *, bin_dir: Path = BIN) -> None:
        self.config = config
        self._bin = bin_dir
        if config.log_dir is not None:
            config.log_dir.mkdir(parents=True, exist_ok=True)
        self.agents = [
            self._replica(f"agent-{i}", "agent", port, agent_settings(config, port))
            for i, port in enumerate(config.agent_ports, start=1)
        ]
        self.gateways = [
            self._replica(f"gateway-{i}", "gateway", port, gateway_settings(config, port))
            for i, port in enumerate(config.gateway_ports, start=1)
        ]

    @property
    def replicas(self) -> list[Replica]:
        """Every replica: agents first, then gateways."""
        return [*self.agents, *self.gateways]

    def _replica(self, name: str, role: Role, port: int, env: dict[str, str]) -> Replica:
        host = self.config.host
        if role == "agent":
            argv, health = [str(self._bin / "agent-service"), "serve"], "/ready"
        else:
            argv, health = [str(self._bin / "gateway"), "serve"], "/readyz"
        log_dir = self.config.log_dir
        return Replica(
            name=name,
            role=role,
            argv=argv,
            env=env,
            health_url=f"http://{host}:{port}{health}",
            log_path=log_dir / f"{name}.log" if log_dir is not None else None,
        )

    def gateway_replica(self, name: str, port: int, **overrides: str) -> Replica:
        """An extra gateway replica over the same agents, with settings overridden (tests)."""
        env = {**gateway_settings(self.config, port), **overrides}
        return self._replica(name, "gateway", port, env)

    # --- preparing the shared servers --------------------------------------------------------

    def check_servers(self) -> None:
        """Fail fast, naming the server and the command that starts it, when one is down."""
        pg = urlsplit(self.config.pg_server)
        if not _port_open(pg.hostname or "127.0.0.1", pg.port or 5432):
            raise TopologyError(
                f"PostgreSQL is not reachable at {pg.hostname}:{pg.port or 5432}; "
                f"start it with: {PG_START}"
            )
        redis = urlsplit(self.config.redis_url)
        if not _redis_pong(redis.hostname or "127.0.0.1", redis.port or 6379):
            raise TopologyError(
                f"Redis is not reachable at {redis.hostname}:{redis.port or 6379}; start it with: "
                + REDIS_START.format(port=redis.port or 6379)
            )

    def prepare(self) -> None:
        """Create the database if it is missing and migrate it (the replicas seed it once)."""
        self.check_servers()
        admin_dsn = f"{self.config.pg_server.rstrip('/')}/postgres"
        name = self.config.database
        try:
            with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=5) as admin:
                found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if found.fetchone() is None:
                    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                    print(f"created database {name}", flush=True)  # noqa: T201
        except psycopg.Error as exc:
            raise TopologyError(f"cannot create database {name!r}: {exc}") from exc
        self._job("migrate")

    def _job(self, command: str) -> None:
        done = subprocess.run(
            [str(self._bin / "agent-service"), command],
            env={**os.environ, **job_settings(self.config)},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise TopologyError(
                f"agent-service {command} failed ({done.returncode}):\n{done.stderr.strip()}"
            )
        print(done.stdout.strip(), flush=True)  # noqa: T201

    # --- running ----------------------------------------------------------------------------

    def start(self, timeout_s: float = 60.0) -> None:
        """Start every replica; return once all are healthy (agents, then gateways) or raise."""
        # Started together: a gateway's start-up overlaps the agents', it only reports ready later.
        for replica in self.replicas:
            replica.start()
        wait_healthy(self.agents, timeout_s)
        wait_healthy(self.gateways, timeout_s)

    def restart(self, replica: Replica, timeout_s: float = 60.0) -> None:
        """Stop one replica gracefully and start it again, healthy."""
        replica.stop()
        replica.start()
        wait_healthy([replica], timeout_s)

    def stop(self) -> None:
        """Stop every replica: gateways first (they drain their streams), then the agents."""
        for replica in reversed(self.replicas):
            if replica.running():
                replica.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        for replica in reversed(self.replicas):
            replica.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _redis_pong(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _ports(text: str) -> tuple[int, ...]:
    try:
        ports = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ports, got {text!r}") from None
    if not ports or any(not 0 < p < 65536 for p in ports):
        raise argparse.ArgumentTypeError(f"ports must be in 1..65535, got {text!r}")
    return ports


DEMO_USERS: Final = (("u-alice", "acme-hvac"), ("u-bob", "bluepeak-plumbing"))


def sign_in_tokens(config: TopologyConfig) -> list[tuple[str, str]]:
    """A user token per demo user, signed with this run's user-token key."""
    from gateway.auth import mint_dev_token  # the gateway's own signer (workspace package)
    from gateway.settings import GatewaySettings

    settings = GatewaySettings(
        env="production",
        internal_key=config.internal_key,
        jwt_hs256_secret=config.user_token_secret,
    )
    return [
        (user, mint_dev_token(settings.jwt_config(), user_id=user, company_id=company))
        for user, company in DEMO_USERS
    ]


def _parser() -> argparse.ArgumentParser:
    defaults = TopologyConfig()
    parser = argparse.ArgumentParser(
        prog="topology", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--check", action="store_true", help="start, verify health, stop")
    parser.add_argument("--agent-ports", type=_ports, default=defaults.agent_ports)
    parser.add_argument("--gateway-ports", type=_ports, default=defaults.gateway_ports)
    parser.add_argument("--database", default=defaults.database)
    parser.add_argument("--pg-server", default=defaults.pg_server)
    parser.add_argument("--redis-url", default=defaults.redis_url)
    parser.add_argument("--redis-prefix", default=defaults.redis_prefix)
    parser.add_argument(
        "--log-dir", type=Path, default=None, help="one log file per replica (default: terminal)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Prepare, start, print the URLs; then wait for Ctrl-C (or exit at once with --check)."""
    args = _parser().parse_args(argv)
    config = TopologyConfig(
        agent_ports=args.agent_ports,
        gateway_ports=args.gateway_ports,
        database=args.database,
        pg_server=args.pg_server,
        redis_url=args.redis_url,
        redis_prefix=args.redis_prefix,
        log_dir=args.log_dir,
    )
    topology = Topology(config)
    # SIGTERM too (and SIGINT even where a shell ignored it): leave no replica running behind.
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with topology:
            topology.prepare()
            topology.start()
            lines = [f"  {r.name:<10} {r.url}" for r in topology.replicas]
            print(  # noqa: T201
                "\nproduction-like topology is up "
                f"(PostgreSQL database {config.database}, Redis {config.redis_url}):\n"
                + "\n".join(lines)
                + "\n\n  Open a gateway URL in a browser and paste a token to sign in"
                + " (valid 1 h; both tiers run in production mode with keys made for this run):\n"
                + "\n".join(f"  {user:<8} {token}" for user, token in sign_in_tokens(config))
                + "\n\n  Ctrl-C stops everything.\n",
                flush=True,
            )
            if args.check:
                print("check: all replicas healthy", flush=True)  # noqa: T201
                return 0
            while all(r.running() for r in topology.replicas):
                time.sleep(0.5)
            gone = [r.name for r in topology.replicas if not r.running()]
            print(f"stopping: {', '.join(gone)} exited", file=sys.stderr)  # noqa: T201
            return 1
    except TopologyError as exc:
        print(f"topology: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
