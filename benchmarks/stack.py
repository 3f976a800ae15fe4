"""Start the fake model server, the agent service and the gateway as child processes."""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import resource
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import aiohttp

BIN = Path(sys.executable).parent
START_TIMEOUT_S = 60.0
BIG = str(10**9)
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, slots=True)
class Stack:
    """The running processes: their base URLs and pids."""

    fake_url: str
    agent_url: str
    gateway_url: str
    pids: dict[str, int]
    logs: dict[str, Path]


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's open-file limit toward `wanted` (children inherit it); the result."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        with suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    """A port nobody listens on right now (the child binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _base_env() -> dict[str, str]:
    # settings of a developer's shell must not leak into the measured processes
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AGENT_", "GATEWAY_", "OPENAI_", "LANGCHAIN_", "LANGSMITH_"))
    }


def agent_env(fake_url: str, port: int, data_dir: Path) -> dict[str, str]:
    """The agent on the real-model path, pointed at the fake, production-like logging."""
    return {
        **_base_env(),
        "AGENT_HOST": "127.0.0.1",
        "AGENT_PORT": str(port),
        "AGENT_DATA_DIR": str(data_dir),
        "AGENT_LOG_LEVEL": "warning",
        "AGENT_LOG_JSON": "true",
        "AGENT_PROVIDER": "openai",
        "AGENT_OPENAI_BASE_URL": f"{fake_url}/v1",
        "AGENT_OPENAI_API_KEY": "bench",
        "AGENT_MODEL_NAME": "fake-model",
        "AGENT_MODEL_ANSWER_MAX_TOKENS": "32768",
        "AGENT_RUN_TIMEOUT_S": "900",
        "AGENT_MODEL_MAX_RETRIES": "0",
    }


def gateway_env(agent_url: str, port: int) -> dict[str, str]:
    """The gateway with limits out of the way (the bench is one user), production-like logging."""
    return {
        **_base_env(),
        "GATEWAY_ENV": "development",  # loopback only; the load takes /auth/dev-token tokens
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "GATEWAY_AGENT_URL": agent_url,
        "GATEWAY_LOG_LEVEL": "WARNING",
        "GATEWAY_LOG_JSON": "true",
        "GATEWAY_LIMIT_USER_REQUESTS": BIG,
        "GATEWAY_LIMIT_COMPANY_REQUESTS": BIG,
        "GATEWAY_LIMIT_COMPANY_TOKENS": BIG,
        "GATEWAY_LIMIT_USER_STREAMS": BIG,
        "GATEWAY_UPSTREAM_MAX_CONNECTIONS": "8192",
        "GATEWAY_WS_AUTH_TIMEOUT_S": "600",
        "GATEWAY_WS_MAX_PER_USER": BIG,
        # S3 measures that hanging up ends the model calls behind the streams; with resume (the
        # default) a run outlives its client by design. The resume buffer's cost is not measured.
        "GATEWAY_RESUME": "false",
    }


async def _wait_ready(
    session: aiohttp.ClientSession, url: str, proc: subprocess.Popen[bytes], name: str
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT_S
    while loop.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} before it was ready")
        with suppress(aiohttp.ClientError, OSError):
            async with session.get(url) as resp:
                if resp.status == 200:
                    return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{name} was not ready within {START_TIMEOUT_S:.0f} s ({url})")


def _die_with_parent() -> None:
    # Linux: the child gets SIGTERM if the harness dies without stopping it (kill -9, a crash)
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _spawn(cmd: list[str], env: dict[str, str], log: TextIO) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        cmd, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _prepare(workdir: Path, script: dict[str, Any]) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    script_path = workdir / "fake-script.json"
    script_path.write_text(json.dumps(script))
    return script_path


@asynccontextmanager
async def running_stack(
    workdir: Path,
    script: dict[str, Any],
    *,
    workers: int = 1,
    agent_extra: dict[str, str] | None = None,
    gateway_extra: dict[str, str] | None = None,
) -> AsyncIterator[Stack]:
    """Start the three processes (fake → agent → gateway), yield them ready, stop them.

    `workers` > 1 runs each tier as that many serving processes (`--workers`); their CPU and
    memory are read over the supervisor's whole process tree (`procs.read_sample`)."""
    serve = ["serve", "--workers", str(workers)]
    script_path = _prepare(workdir, script)
    ports = {name: free_port() for name in ("fake", "agent", "gateway")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs = {name: (workdir / f"{name}.log").open("w") for name in ports}
    try:
        procs["fake"] = _spawn(
            [
                str(BIN / "fake-openai"),
                "--port",
                str(ports["fake"]),
                "--script",
                str(script_path),
                "--log-level",
                "warning",
            ],
            _base_env(),
            logs["fake"],
        )
        procs["agent"] = _spawn(
            [str(BIN / "agent-service"), *serve],
            {
                **agent_env(urls["fake"], ports["agent"], workdir / "agent-data"),
                **(agent_extra or {}),
            },
            logs["agent"],
        )
        procs["gateway"] = _spawn(
            [str(BIN / "gateway"), *serve],
            {**gateway_env(urls["agent"], ports["gateway"]), **(gateway_extra or {})},
            logs["gateway"],
        )
        async with aiohttp.ClientSession() as session:
            await _wait_ready(session, f"{urls['fake']}/v1/models", procs["fake"], "fake-openai")
            await _wait_ready(session, f"{urls['agent']}/ready", procs["agent"], "agent-service")
            await _wait_ready(session, f"{urls['gateway']}/readyz", procs["gateway"], "gateway")
        yield Stack(
            fake_url=urls["fake"],
            agent_url=urls["agent"],
            gateway_url=urls["gateway"],
            pids={name: proc.pid for name, proc in procs.items()},
            logs={name: workdir / f"{name}.log" for name in ports},
        )
    finally:
        # gateway first, so no client-side reconnects hit a stopped agent
        for name in ("gateway", "agent", "fake"):
            if name in procs:
                _stop(procs[name])
        for log in logs.values():
            log.close()
