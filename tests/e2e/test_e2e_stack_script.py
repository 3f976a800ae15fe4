"""`make run`'s supervisor (scripts/stack.py): a stop signal stops both tiers; so does a death.

A process manager, `timeout` or a CI step stops `make run` with SIGTERM (a closed terminal with
SIGHUP); neither may leave a server running. A tier that dies on its own takes the stack down with
a non-zero exit, so whatever supervises `make run` sees the failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

STACK = Path(__file__).resolve().parents[2] / "scripts" / "stack.py"
READY_LINE = "Ctrl-C stops everything"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by anyone) is not running either
    return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"


@contextmanager
def running_stack(
    tmp_path: Path, template: Path
) -> Iterator[tuple[subprocess.Popen[str], list[int], Path]]:
    data_dir = tmp_path / "agent"
    shutil.copytree(template, data_dir)
    env = {
        **os.environ,
        "AGENT_DATA_DIR": str(data_dir),
        "AGENT_PORT": str(free_port()),
        "GATEWAY_PORT": str(free_port()),
    }
    env.pop("GATEWAY_AGENT_URL", None)
    log = tmp_path / "stderr.log"
    kids: list[int] = []
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, str(STACK)], env=env, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # blocks until the supervisor says both tiers are healthy
            if READY_LINE in line:
                break
        else:
            pytest.fail(f"the stack did not start ({proc.wait(60)}): {log.read_text()[-2000:]}")
        kids = children(proc.pid)
        assert len(kids) == 2, kids
        yield proc, kids, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for kid in kids:
            if alive(kid):
                os.kill(kid, signal.SIGKILL)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_stops_both_tiers(
    signum: signal.Signals, tmp_path: Path, e2e_template: Path
) -> None:
    with running_stack(tmp_path, e2e_template) as (proc, kids, _):
        proc.send_signal(signum)
        assert proc.wait(timeout=30) == 0
        assert not [kid for kid in kids if alive(kid)]


def test_a_dying_tier_stops_the_other_and_fails(tmp_path: Path, e2e_template: Path) -> None:
    with running_stack(tmp_path, e2e_template) as (proc, kids, log):
        agent, gateway = kids
        os.kill(agent, signal.SIGKILL)
        assert proc.wait(timeout=30) != 0
        assert not alive(gateway)
        assert "agent service exited with code -9; stopping the stack" in log.read_text()
