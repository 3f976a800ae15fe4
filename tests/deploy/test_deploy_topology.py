"""scripts/topology.py (`make prod-local`) refuses clearly before starting anything half-way."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from support.deploy_stack import ROOT, free_ports, load_topology

topology = load_topology()


def test_each_gateway_spreads_over_every_agent_and_shares_redis() -> None:
    config = topology.TopologyConfig(agent_ports=(9101, 9102, 9103), database="agent_x")
    for port in config.gateway_ports:
        env = topology.gateway_settings(config, port)
        assert env["GATEWAY_AGENT_URLS"].split(",") == [
            "http://127.0.0.1:9101",
            "http://127.0.0.1:9102",
            "http://127.0.0.1:9103",
        ]
        assert env["GATEWAY_REDIS_URL"] == config.redis_url
        assert env["GATEWAY_PORT"] == str(port)
    agent = topology.agent_settings(config, 9102)
    assert agent["AGENT_DATABASE_URL"] == "postgresql://postgres@127.0.0.1:5432/agent_x"
    assert agent["AGENT_PORT"] == "9102"


def test_extra_settings_reach_every_replica_and_win() -> None:
    config = topology.TopologyConfig(
        agent_env={"AGENT_PROVIDER": "openai"}, gateway_env={"GATEWAY_REDIS_PREFIX": "mine"}
    )
    assert topology.agent_settings(config, 1)["AGENT_PROVIDER"] == "openai"
    assert topology.gateway_settings(config, 1)["GATEWAY_REDIS_PREFIX"] == "mine"


def test_a_missing_redis_is_named_with_the_command_that_starts_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    (port,) = free_ports(1)
    code = topology.main(["--check", "--redis-url", f"redis://127.0.0.1:{port}/0"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"Redis is not reachable at 127.0.0.1:{port}" in err
    assert f"redis-server --daemonize yes --bind 127.0.0.1 --port {port}" in err


def test_a_missing_postgres_is_named_with_the_command_that_starts_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    (port,) = free_ports(1)
    code = topology.main(["--check", "--pg-server", f"postgresql://postgres@127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"PostgreSQL is not reachable at 127.0.0.1:{port}" in err
    assert "pg_ctlcluster" in err


def test_a_port_held_by_another_process_is_refused(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        config = topology.TopologyConfig(agent_ports=(port,), log_dir=tmp_path)
        replica = topology.Topology(config).agents[0]
        with pytest.raises(topology.TopologyError, match=f"127.0.0.1:{port} is already in use"):
            replica.start()
    assert not replica.running()


@pytest.mark.parametrize("ports", ["8101,x", "0", "70000", ""])
def test_bad_ports_are_a_usage_error(ports: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        topology.main(["--agent-ports", ports])
    assert exited.value.code == 2
    assert "ports" in capsys.readouterr().err


def test_make_prod_local_runs_this_script() -> None:
    makefile = (ROOT / "Makefile").read_text()
    target = makefile.split("\nprod-local:", 1)[1].split("\n\n", 1)[0]
    assert "scripts/topology.py" in target
