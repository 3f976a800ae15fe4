"""Start the whole stack on embedded defaults: the agent service, then the gateway.

`make run` calls this. It seeds the demo data (the agent service does it on first start), waits
until each tier answers its health check, prints where to go, and stops both on Ctrl-C, SIGTERM
or SIGHUP (a process manager, `timeout`, a closed terminal, a CI step). When a child dies on its
own, the other is stopped too and this exits with a non-zero code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
STOP_TIMEOUT_S = 10.0
"""How long each child gets to stop after SIGTERM before it is killed."""


class Stopped(Exception):
    """A stop signal arrived: SIGTERM or SIGHUP (SIGINT stays KeyboardInterrupt)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stopped(signum: int, _frame: object) -> None:
    raise Stopped(signum)


def wait_healthy(name: str, url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{name} exited with code {proc.returncode} before it was healthy (see above)")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"{name} did not answer {url} within {timeout_s:.0f} s")


def main() -> int:
    env = {**os.environ}
    # The one place development mode is asked for: it trusts keys committed to this repository,
    # so the gateway binds loopback only and answers only to local Host names.
    env.setdefault("GATEWAY_ENV", "development")
    env.setdefault("AGENT_DATA_DIR", str(ROOT / "var" / "agent"))
    env.setdefault("AGENT_OFFLINE_PACE_MS", "15")
    agent_port = env.setdefault("AGENT_PORT", "8001")
    gateway_port = env.setdefault("GATEWAY_PORT", "8000")
    env.setdefault("GATEWAY_AGENT_URL", f"http://127.0.0.1:{agent_port}")
    procs: list[subprocess.Popen[bytes]] = []
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_stopped)
    try:
        agent = subprocess.Popen([str(BIN / "agent-service"), "serve"], env=env)
        procs.append(agent)
        wait_healthy("agent service", f"http://127.0.0.1:{agent_port}/health", agent)
        gateway_cli = BIN / "gateway"
        gateway_ok = gateway_cli.exists()
        if gateway_ok:
            gateway = subprocess.Popen([str(gateway_cli), "serve"], env=env)
            procs.append(gateway)
            wait_healthy("gateway", f"http://127.0.0.1:{gateway_port}/healthz", gateway)
        print(  # noqa: T201
            f"\n  agent service  http://127.0.0.1:{agent_port}   (internal API)\n"
            + (
                f"  gateway        http://127.0.0.1:{gateway_port}   (open it in a browser)\n"
                if gateway_ok
                else ""
            )
            + "\n  Try it:  see the README's curl examples.  Ctrl-C stops everything.\n",
            flush=True,
        )
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        dead = next(p for p in procs if p.poll() is not None)
        name = "agent service" if dead is procs[0] else "gateway"
        print(f"{name} exited with code {dead.returncode}; stopping the stack", file=sys.stderr)  # noqa: T201
        return dead.returncode or 1
    except KeyboardInterrupt:
        return 0
    except Stopped as stop:
        print(f"{stop}: stopping the stack", file=sys.stderr)  # noqa: T201
        return 0  # a requested stop that went cleanly
    finally:
        # a second signal while stopping must not leave a child behind
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


if __name__ == "__main__":
    sys.exit(main())
