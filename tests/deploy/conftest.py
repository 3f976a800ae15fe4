"""Deploy test fixtures: `stack`, the production-like topology shared by the real-server tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from support.deploy_stack import USER_LIMIT, free_ports, load_topology, require_redis, unique
from support.pg_database import PG_HOST, PG_PORT, fresh_database


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """`make prod-local`'s topology on free ports, a throwaway database and Redis key prefix."""
    require_redis()
    topology = load_topology()
    ports = free_ports(4)
    log_dir = tmp_path_factory.mktemp("topology-logs")
    with fresh_database("deploy_test") as database:
        config = topology.TopologyConfig(
            agent_ports=tuple(ports[:2]),
            gateway_ports=tuple(ports[2:]),
            pg_server=f"postgresql://postgres@{PG_HOST}:{PG_PORT}",
            database=database,
            redis_prefix=unique("gw-deploy"),
            agent_env={"AGENT_DATA_DIR": str(log_dir / "agent-data"), "AGENT_ENV": "test"},
            gateway_env={
                "GATEWAY_LIMIT_USER_REQUESTS": str(USER_LIMIT),
                # longer than the whole session, so no request leaves the window mid-test
                "GATEWAY_LIMIT_USER_WINDOW_S": "600",
                "GATEWAY_LIMIT_COMPANY_REQUESTS": "100000",
                # /api/chat/complete holds a stream slot: the bursts here measure the request
                # window, so every admitted request must also find a slot.
                "GATEWAY_LIMIT_USER_STREAMS": str(USER_LIMIT),
                # The default 0.25 s is for a quiet production host; a CI machine running other
                # suites in parallel can starve the first burst's connection set-up past it.
                "GATEWAY_REDIS_TIMEOUT_S": "3",
            },
            log_dir=log_dir,
        )
        with topology.Topology(config) as running:
            running.prepare()
            running.start(timeout_s=90)
            yield running
