"""The README's gateway examples work as written against the running stack."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

from support.stack import Stack

README = Path(__file__).resolve().parents[2] / "README.md"


def gateway_examples() -> list[str]:
    section = README.read_text().split("### Through the gateway", 1)[1].split("### Directly", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


async def run(script: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "bash",
        "-euo",
        "pipefail",
        "-c",
        script,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_readme_gateway_examples_work_as_written(stack: Stack) -> None:
    sse, websocket = gateway_examples()
    host = stack.gateway.url.removeprefix("http://")
    # the README's ports are make run's; the test stack runs on free ports
    script = (sse + "\n" + websocket).replace("127.0.0.1:8000", host)
    script = script.replace("uv run python", sys.executable)
    output = await run(script)
    assert '"type":"complete"' in output
    assert "active technicians" in output
    assert "'type': 'auth_success'" in output
    assert "Overtime at Acme Heating & Cooling" in output
