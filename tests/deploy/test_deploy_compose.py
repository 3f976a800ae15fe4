"""docker-compose.yml and the Dockerfiles, checked without a Docker engine.

The file parses; every command it runs exists in this repository and parses with that command's
own CLI; every setting it sets is a real setting of its tier and validates; health checks hit real
routes on the right ports; the Dockerfiles copy paths that exist and install workspace packages;
and the compose topology is `make prod-local`'s (scripts/topology.py): the same replica roles
with the same settings.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic_settings import BaseSettings
from support.deploy_stack import ROOT, load_topology
from support.servers import serve_asgi

from agent_service.app import ROUTES as AGENT_ROUTES
from agent_service.app import create_app as create_agent
from agent_service.cli import build_parser as agent_parser
from agent_service.settings import DEV_INTERNAL_SECRET, AgentSettings
from contracts.agent_api import (
    ChatInput,
    ChatRequest,
    CompleteEvent,
    ConversationContext,
    RouteDecisionEvent,
    TokenEvent,
)
from contracts.client import AgentClient, hs256_token_factory
from fake_openai import running_fake_openai
from fake_openai.cli import _parser as fake_openai_parser
from fake_openai.script_file import load_script
from gateway.app import create_app as gateway_app
from gateway.cli import main as gateway_main
from gateway.settings import DEV_JWT_SECRET, GatewaySettings

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILES = {
    "agent": ROOT / "services" / "agent" / "Dockerfile",
    "gateway": ROOT / "gateway" / "Dockerfile",
    "fake-openai": ROOT / "services" / "fake_openai" / "Dockerfile",
}
_VAR = re.compile(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}")
REQUIRED = {
    "GATEWAY_JWT_HS256_SECRET": "a-secret-of-the-operators-own-choosing-0123456789",
    "GATEWAY_INTERNAL_KEY": "an-internal-key-of-the-operators-own-choosing-0123",
}
"""What an operator must set before `docker compose up` (compose refuses to start without them)."""


def resolve(value: object) -> str:
    """A compose value as `docker compose up` sees it with only `REQUIRED` set: defaults applied."""
    text = str(value).replace("$$", "\0")

    def default(match: re.Match[str]) -> str:
        name, kind, fallback = match.groups()
        if kind == ":?":
            assert name in REQUIRED, f"${{{name}}} is required but not in REQUIRED"
            return REQUIRED[name]
        assert kind == ":-", f"${{{name}}} has no default: {text!r}"
        return str(fallback)

    return _VAR.sub(default, text).replace("\0", "$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]  # type: ignore[no-any-return]


def role_of(service: dict[str, Any]) -> str | None:
    """Which of this repo's images a service runs (by its Dockerfile), if any."""
    dockerfile = service.get("build", {}).get("dockerfile")
    for role, path in DOCKERFILES.items():
        if dockerfile and ROOT / dockerfile == path:
            return role
    return None


def replicas(services: dict[str, dict[str, Any]], role: str) -> dict[str, dict[str, Any]]:
    """The long-running replicas of a role (the one-off migrate job excluded)."""
    return {
        name: svc
        for name, svc in services.items()
        if role_of(svc) == role and svc.get("restart") != "no"
    }


def env_of(service: dict[str, Any]) -> dict[str, str]:
    return {key: resolve(value) for key, value in (service.get("environment") or {}).items()}


def console_scripts() -> dict[str, str]:
    """Every console script the workspace installs: name -> entry point."""
    found: dict[str, str] = {}
    for pyproject in ROOT.glob("**/pyproject.toml"):
        if ".venv" in pyproject.parts:
            continue
        found.update(tomllib.loads(pyproject.read_text()).get("project", {}).get("scripts", {}))
    return found


def workspace_packages() -> set[str]:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {
        tomllib.loads((ROOT / member / "pyproject.toml").read_text())["project"]["name"]
        for member in root["tool"]["uv"]["workspace"]["members"]
    }


def check_command(argv: list[str]) -> None:
    """The command is one of ours and its arguments parse with its own CLI."""
    assert argv, "empty command"
    program, args = argv[0], argv[1:]
    assert program in console_scripts(), f"{program} is not a console script of this repo"
    if program == "agent-service":
        agent_parser().parse_args(args)
    elif program == "fake-openai":
        fake_openai_parser().parse_args(args)
    else:
        # gateway builds its parser inside main(): its --help exits before anything runs.
        with contextlib.redirect_stdout(io.StringIO()), pytest.raises(SystemExit) as done:
            gateway_main([*args, "--help"])
        assert done.value.code == 0
        # the image serves one process; compose asks for one per core
        assert args in (["serve"], ["serve", "--workers", "auto"]), f"unexpected arguments {args}"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No AGENT_/GATEWAY_ variable of the test process leaks into a settings check."""
    for key in list(os.environ):
        if key.startswith(("AGENT_", "GATEWAY_")):
            monkeypatch.delenv(key)
    return monkeypatch


def check_settings(
    env: dict[str, str], settings_cls: type[BaseSettings], monkeypatch: pytest.MonkeyPatch
) -> BaseSettings:
    """Every variable is a field of the tier's settings, and together they validate."""
    prefix = str(settings_cls.model_config.get("env_prefix", ""))
    fields = {f"{prefix}{name}".upper() for name in settings_cls.model_fields}
    unknown = sorted(set(env) - fields)
    assert not unknown, f"not settings of {settings_cls.__name__}: {unknown}"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return settings_cls()


def health_url(test: list[str] | str) -> str:
    """The URL a health check fetches (python -c urllib ...)."""
    text = test if isinstance(test, str) else " ".join(test)
    found = re.search(r"http://127\.0\.0\.1:[^'\"\s]+", text)
    assert found, f"no URL in health check {test!r}"
    return found.group(0)


def gateway_paths() -> set[str]:
    app = gateway_app(GatewaySettings(env="development", host="127.0.0.1"))
    return {r.canonical for r in app.router.resources()}


AGENT_PATHS = {route.path for route in AGENT_ROUTES}


# --- the compose file ---------------------------------------------------------------------------


def test_compose_has_every_tier_and_server(services: dict[str, dict[str, Any]]) -> None:
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    assert set(replicas(services, "agent")) == {"agent-1", "agent-2"}
    assert set(replicas(services, "gateway")) == {"gateway-1", "gateway-2"}
    assert services["fake-openai"]["profiles"] == ["fake-model"]
    # Only the optional model server sits in a profile: `up` starts the whole stack.
    assert [name for name, svc in services.items() if svc.get("profiles")] == ["fake-openai"]


def test_every_command_exists_in_this_repo(services: dict[str, dict[str, Any]]) -> None:
    ours = {name: svc for name, svc in services.items() if role_of(svc) is not None}
    assert set(ours) >= {"migrate", "agent-1", "agent-2", "gateway-1", "gateway-2", "fake-openai"}
    for name, svc in ours.items():
        assert isinstance(svc["command"], list), f"{name}: use the exec form"
        check_command(svc["command"])
    assert services["migrate"]["command"] == ["agent-service", "migrate"]


def test_agent_settings_are_real_and_valid(
    services: dict[str, dict[str, Any]], clean_env: pytest.MonkeyPatch
) -> None:
    for name in ("migrate", *replicas(services, "agent")):
        settings = check_settings(env_of(services[name]), AgentSettings, clean_env)
        assert isinstance(settings, AgentSettings)
        assert settings.database_url is not None, name


def test_gateway_settings_are_real_and_valid(
    services: dict[str, dict[str, Any]], clean_env: pytest.MonkeyPatch
) -> None:
    for name in replicas(services, "gateway"):
        settings = check_settings(env_of(services[name]), GatewaySettings, clean_env)
        assert isinstance(settings, GatewaySettings)
        assert settings.redis_url, name


def test_both_tiers_share_one_internal_key(services: dict[str, dict[str, Any]]) -> None:
    agent_env = env_of(services["agent-1"])
    gateway_env = env_of(services["gateway-1"])
    issuers = json.loads(agent_env["AGENT_INTERNAL_ISSUERS"])
    assert (
        issuers[GatewaySettings.model_fields["internal_issuer"].default]
        == gateway_env["GATEWAY_INTERNAL_KEY"]
    )
    raw_agent = services["agent-1"]["environment"]["AGENT_INTERNAL_ISSUERS"]
    raw_gateway = services["gateway-1"]["environment"]["GATEWAY_INTERNAL_KEY"]
    # One variable sets both, so changing the key cannot leave one tier behind.
    assert _VAR.search(raw_agent).group(1) == _VAR.search(raw_gateway).group(1)  # type: ignore[union-attr]


def test_health_checks_hit_real_routes_on_the_listening_port(
    services: dict[str, dict[str, Any]],
) -> None:
    gateway_routes = gateway_paths()
    for name, svc in services.items():
        role = role_of(svc)
        if role is None or svc.get("healthcheck", {}).get("disable"):
            continue
        url = urlsplit(health_url(svc["healthcheck"]["test"]))
        env = env_of(svc)
        if role == "agent":
            assert url.path in AGENT_PATHS and str(url.port) == env["AGENT_PORT"], name
        elif role == "gateway":
            assert url.path in gateway_routes and str(url.port) == env["GATEWAY_PORT"], name
        else:
            args = fake_openai_parser().parse_args(svc["command"][1:])
            assert url.path == "/v1/models" and url.port == args.port, name
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"], name


def test_gateways_are_published_on_the_local_topologys_ports(
    services: dict[str, dict[str, Any]],
) -> None:
    topology = load_topology()
    published = []
    for name, svc in sorted(replicas(services, "gateway").items()):
        (mapping,) = svc["ports"]
        address, host, container = mapping.split(":")
        assert address == "127.0.0.1", name
        assert container == env_of(svc)["GATEWAY_PORT"], name
        published.append(int(host))
    assert tuple(published) == topology.TopologyConfig().gateway_ports
    # The agents stay private: nothing publishes them.
    assert all("ports" not in svc for svc in replicas(services, "agent").values())


def test_every_published_port_binds_the_loopback_interface(
    services: dict[str, dict[str, Any]],
) -> None:
    # A development gateway (demo sign-in) reachable from the network is an open door; the
    # operator puts a TLS proxy in front to serve others.
    published = [(name, str(m)) for name, svc in services.items() for m in svc.get("ports", [])]
    assert published
    for name, mapping in published:
        assert mapping.startswith("127.0.0.1:") and mapping.count(":") == 2, (name, mapping)


def test_the_user_token_secret_has_no_committed_default(
    services: dict[str, dict[str, Any]], clean_env: pytest.MonkeyPatch
) -> None:
    for name, svc in replicas(services, "gateway").items():
        raw = str(svc["environment"]["GATEWAY_JWT_HS256_SECRET"])
        # `${VAR:?message}`: compose refuses to start until the operator sets it.
        found = _VAR.fullmatch(raw)
        assert found and found.group(2) == ":?", (name, raw)
        settings = check_settings(env_of(svc), GatewaySettings, clean_env)
        assert isinstance(settings, GatewaySettings)
        secret = settings.jwt_config().hs256_secret
        assert secret == REQUIRED["GATEWAY_JWT_HS256_SECRET"] != DEV_JWT_SECRET, name


def test_compose_runs_production_with_required_keys(
    services: dict[str, dict[str, Any]], clean_env: pytest.MonkeyPatch
) -> None:
    """No development mode, no dev sign-in, no default internal key: the public development
    keys must never be what a deployment runs on."""
    for name, svc in replicas(services, "gateway").items():
        raw = svc["environment"]
        assert "GATEWAY_DEV_AUTH" not in raw, name
        found = _VAR.fullmatch(str(raw["GATEWAY_INTERNAL_KEY"]))
        assert found and found.group(2) == ":?", (name, raw["GATEWAY_INTERNAL_KEY"])
        settings = check_settings(env_of(svc), GatewaySettings, clean_env)
        assert isinstance(settings, GatewaySettings)
        assert settings.env == "production" and not settings.dev_auth_enabled, name
    for name in ("migrate", *replicas(services, "agent")):
        raw_issuers = str(services[name]["environment"]["AGENT_INTERNAL_ISSUERS"])
        assert ":?" in raw_issuers and ":-" not in raw_issuers, name
        agent = check_settings(env_of(services[name]), AgentSettings, clean_env)
        assert isinstance(agent, AgentSettings)
        assert agent.env == "production", name


@pytest.mark.parametrize("doc", ["deployment.md", "operations.md"])
def test_deployment_docs_run_production(doc: str) -> None:
    text = (ROOT / "docs" / doc).read_text()
    for unsafe in ("GATEWAY_DEV_AUTH=true", "GATEWAY_ENV=development", "AGENT_ENV=development"):
        assert unsafe not in text, (doc, unsafe)
    assert "dev-internal-secret" not in text, doc


def test_compose_matches_the_local_topology(services: dict[str, dict[str, Any]]) -> None:
    topology = load_topology()
    config = topology.TopologyConfig()
    agents = replicas(services, "agent")
    gateways = replicas(services, "gateway")
    assert len(agents) == len(config.agent_ports)
    assert len(gateways) == len(config.gateway_ports)

    local_agent = topology.agent_settings(config, config.agent_ports[0])
    local_gateway = topology.gateway_settings(config, config.gateway_ports[0])
    same_values = {
        "AGENT_PG_MIGRATE_ON_START",
        "AGENT_SEED_ON_START",
        "AGENT_LOG_JSON",
        "GATEWAY_REDIS_PREFIX",
        "GATEWAY_LOG_JSON",
    }
    for name, svc in agents.items():
        env = env_of(svc)
        missing = sorted(set(local_agent) - set(env))
        assert not missing, f"{name} lacks settings the local topology sets: {missing}"
        for key in same_values & set(local_agent):
            assert env[key] == local_agent[key], (name, key)
        dsn = urlsplit(env["AGENT_DATABASE_URL"])
        assert dsn.hostname == "postgres" and dsn.path == f"/{config.database}", name
        assert services["postgres"]["environment"]["POSTGRES_DB"] == config.database
    agent_urls = [f"http://{name}:{env_of(svc)['AGENT_PORT']}" for name, svc in agents.items()]
    for name, svc in gateways.items():
        env = env_of(svc)
        missing = sorted(set(local_gateway) - set(env))
        assert not missing, f"{name} lacks settings the local topology sets: {missing}"
        for key in same_values & set(local_gateway):
            assert env[key] == local_gateway[key], (name, key)
        # Each gateway spreads over every agent replica, as locally.
        assert sorted(env["GATEWAY_AGENT_URLS"].split(",")) == sorted(agent_urls), name
        assert urlsplit(env["GATEWAY_REDIS_URL"]).hostname == "redis", name


def test_start_order_migrate_then_agents_then_gateways(services: dict[str, dict[str, Any]]) -> None:
    migrate = services["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name, svc in replicas(services, "agent").items():
        assert svc["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
    agent_names = set(replicas(services, "agent"))
    for name, svc in replicas(services, "gateway").items():
        deps = svc["depends_on"].items()
        needs = {dep for dep, how in deps if how["condition"] == "service_healthy"}
        assert needs == agent_names | {"redis"}, name


def test_the_sql_reader_login_is_the_role_the_migrations_create(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    role = AgentSettings().sql_reader_role
    reader = urlsplit(env_of(services["agent-1"])["AGENT_SQL_DATABASE_URL"])
    assert reader.username == role
    migration = (
        ROOT
        / "services/agent/src/agent_service/storage/postgres/migrations/0002_sql_reader_role.sql"
    ).read_text()
    assert f"CREATE ROLE {role} LOGIN" in migration
    init = compose["configs"]["sql-reader-role"]["content"]
    assert f"CREATE ROLE {role} LOGIN PASSWORD" in init
    # Same flags as the migration enforces, so the migration never has to rewrite the role.
    for flag in ("NOSUPERUSER", "NOBYPASSRLS", "NOCREATEDB", "NOCREATEROLE", "NOINHERIT"):
        assert flag in init
    # The password the init script sets is the one the agents log in with.
    postgres_env = env_of(services["postgres"])
    assert reader.password == postgres_env["SQL_READER_PASSWORD"]
    assert "$SQL_READER_PASSWORD" in resolve(init)
    target = services["postgres"]["configs"][0]["target"]
    assert target.startswith("/docker-entrypoint-initdb.d/") and target.endswith(".sh")


async def test_the_fake_model_profile_answers_through_the_agent(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(compose["configs"]["fake-openai-rules"]["content"])
    script = load_script(rules)
    agent_env = env_of(compose["services"]["agent-1"])
    async with running_fake_openai(script) as fake:
        settings = AgentSettings(
            data_dir=tmp_path / "data",
            env="test",
            provider="openai",
            openai_base_url=fake.base_url,
            model_name=agent_env["AGENT_MODEL_NAME"],
        )
        async with serve_asgi(create_agent(settings)) as url:
            secret = DEV_INTERNAL_SECRET
            async with AgentClient(url, token_factory=hs256_token_factory("gateway", secret)) as c:
                ask = ChatRequest(
                    input=ChatInput(message="How many technicians are active?"),
                    conversation=ConversationContext(
                        id="c1", user_id="u-alice", company_id="acme-hvac"
                    ),
                )
                async with c.stream(ask) as stream:
                    events = [event async for event in stream]
    assert isinstance(events[0], RouteDecisionEvent) and events[0].route == "general"
    answer = "".join(e.content for e in events if isinstance(e, TokenEvent))
    assert "fake OpenAI-compatible server" in answer
    assert isinstance(events[-1], CompleteEvent)


# --- the Dockerfiles --------------------------------------------------------------------------


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def dockerignored() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


@pytest.mark.parametrize("role", sorted(DOCKERFILES))
def test_dockerfile_builds_from_what_exists(role: str) -> None:
    steps = instructions(DOCKERFILES[role])
    froms = [args for word, args in steps if word == "FROM"]
    assert froms and all(f.split()[0] == "python:3.11-slim" for f in froms)
    ignored = dockerignored()
    for word, args in steps:
        if word == "COPY" and not args.startswith("--from"):
            *sources, _ = shlex.split(args)
            for source in sources:
                assert (ROOT / source).exists(), f"{role}: COPY {source} does not exist"
                assert source.split("/")[0] not in ignored, f"{role}: {source} is dockerignored"
    syncs = [args for word, args in steps if word == "RUN" and "uv sync" in args]
    assert syncs, role
    for sync in syncs:
        assert "--frozen" in sync and "--no-dev" in sync
        package = re.search(r"--package (\S+)", sync)
        assert package and package.group(1) in workspace_packages(), sync
    assert any(word == "RUN" and "pip install" in args and "uv" in args for word, args in steps)


@pytest.mark.parametrize("role", sorted(DOCKERFILES))
def test_dockerfile_runs_our_command_as_a_non_root_user(
    role: str, clean_env: pytest.MonkeyPatch
) -> None:
    steps = instructions(DOCKERFILES[role])
    final = steps[max(i for i, (word, _) in enumerate(steps) if word == "FROM") :]
    users = [args for word, args in final if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    (cmd,) = [args for word, args in final if word == "CMD"]
    check_command(json.loads(cmd))
    env: dict[str, str] = {}
    for word, args in final:
        if word == "ENV":
            env.update(dict(pair.split("=", 1) for pair in shlex.split(args)))
    (check,) = [args for word, args in final if word == "HEALTHCHECK"]
    health = " ".join(json.loads(check.split(" CMD ", 1)[1]))
    # The check reads its port from the image's environment, as the server does.
    health = re.sub(
        r"\{os\.environ\.get\('(\w+)', '(\d+)'\)\}",
        lambda m: env.get(m.group(1), m.group(2)),
        health,
    )
    url = urlsplit(health_url(health))
    tier_env = {k: v for k, v in env.items() if k.startswith(("AGENT_", "GATEWAY_"))}
    if role == "agent":
        check_settings(tier_env, AgentSettings, clean_env)
        assert url.path in AGENT_PATHS and str(url.port) == env["AGENT_PORT"]
    elif role == "gateway":
        # The image runs production: it refuses to start until the operator's keys are set.
        with pytest.raises(ValueError, match="refusing to start in production"):
            check_settings(tier_env, GatewaySettings, clean_env)
        check_settings({**tier_env, **REQUIRED}, GatewaySettings, clean_env)
        assert url.path in gateway_paths() and str(url.port) == env["GATEWAY_PORT"]
    else:
        assert url.path == "/v1/models" and str(url.port) == json.loads(cmd)[-1]


def test_dockerignore_keeps_the_context_small_and_secret_free() -> None:
    ignored = dockerignored()
    for name in (".git", ".venv", "var", "tests", ".env"):
        assert name in ignored
    compose_dockerfiles = {
        ROOT / svc["build"]["dockerfile"]
        for svc in yaml.safe_load(COMPOSE.read_text())["services"].values()
        if "build" in svc
    }
    assert compose_dockerfiles == set(DOCKERFILES.values())


def test_the_deployment_doc_names_every_service_and_topology_setting(
    services: dict[str, dict[str, Any]],
) -> None:
    doc = (ROOT / "docs" / "deployment.md").read_text()
    missing = [name for name in services if f"`{name}`" not in doc]
    topology = load_topology()
    config = topology.TopologyConfig()
    settings = {
        *topology.agent_settings(config, config.agent_ports[0]),
        *topology.gateway_settings(config, config.gateway_ports[0]),
    }
    missing += [name for name in sorted(settings) if f"`{name}`" not in doc]
    assert not missing, f"docs/deployment.md does not name {missing}"
