"""The README's commands work as written on a fresh machine after `make run`.

`make run` may install uv into `.tools/` rather than on the PATH, so no command in the README or
the docs may start with a bare `uv`; they use `make` targets or the environment's `.venv/bin/`.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

import pytest
from support.stack import Stack

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
CODE = re.compile(r"```(?:sh|bash)?\n(.*?)```|`([^`\n]+)`", re.S)


def gateway_examples() -> list[str]:
    section = README.read_text().split("### Through the gateway", 1)[1].split("### Directly", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def commands(path: Path) -> list[str]:
    """Every code span and shell block of a page, line by line."""
    lines: list[str] = []
    for block, span in CODE.findall(path.read_text()):
        lines.extend((block or span).splitlines())
    return lines


async def run(script: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "bash",
        "-euo",
        "pipefail",
        "-c",
        script,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_readme_gateway_examples_work_as_written(stack: Stack) -> None:
    sse, websocket = gateway_examples()
    host = stack.gateway.url.removeprefix("http://")
    # the README's ports are make run's; the test stack runs on free ports. Nothing else changes:
    # `.venv/bin/python` is the interpreter `make run` set up, wherever uv itself lives.
    script = (sse + "\n" + websocket).replace("127.0.0.1:8000", host)
    output = await run(script)
    assert '"type":"complete"' in output
    assert "active technicians" in output
    assert "'type': 'auth_success'" in output
    assert "Overtime at Acme Heating & Cooling" in output


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_no_command_needs_uv_on_the_path(page: Path) -> None:
    bare = [line for line in commands(page) if re.search(r"(^|[\s;&|(=])uv (run|sync)\b", line)]
    assert not bare, f"{page.name}: use a make target or .venv/bin/ instead: {bare}"


def test_every_tool_the_docs_name_runs() -> None:
    tools = sorted(
        {
            m
            for page in DOCS
            for line in commands(page)
            for m in re.findall(r"\.venv/bin/([\w-]+)", line)
        }
    )
    assert {"python", "agent-service", "gateway", "fake-openai"} <= set(tools)
    for tool in tools:
        done = subprocess.run(
            [str(ROOT / ".venv" / "bin" / tool), "--help"],
            cwd=ROOT,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, (tool, done.stderr.decode()[-500:])


def test_every_make_target_the_readme_names_exists() -> None:
    targets = sorted(
        {m for line in commands(README) for m in re.findall(r"\bmake (?:-s )?([a-z][\w-]*)", line)}
    )
    assert {"run", "test", "token", "schemas", "screenshots"} <= set(targets)
    for target in targets:
        done = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, check=False)
        assert done.returncode == 0, (target, done.stderr.decode())
