"""The `fake-openai` command: serves a script file, refuses a bad one with a clear message."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path

import httpx

COMMAND = str(Path(sys.executable).with_name("fake-openai"))


async def test_cli_serves_a_script_file(tmp_path: Path) -> None:
    script = tmp_path / "rules.json"
    script.write_text(
        json.dumps({"rules": [{"match": {"last_user": "ping"}, "reply": {"content": "pong"}}]})
    )
    process = await asyncio.create_subprocess_exec(
        COMMAND,
        "--port",
        "0",
        "--script",
        str(script),
        "--ttft-ms",
        "1",
        "--model",
        "cli-model",
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        port = None
        async with asyncio.timeout(20):
            while port is None:
                line = (await process.stderr.readline()).decode()
                assert line, "the server exited before it started"
                found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
                port = int(found.group(1)) if found else None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            body = {"messages": [{"role": "user", "content": "ping"}]}
            answer = (await client.post("/v1/chat/completions", json=body)).json()
            models = (await client.get("/v1/models")).json()
        assert answer["choices"][0]["message"]["content"] == "pong"
        assert [m["id"] for m in models["data"]] == ["cli-model"]
    finally:
        process.terminate()
        await process.wait()


async def test_cli_refuses_a_bad_script(tmp_path: Path) -> None:
    script = tmp_path / "rules.json"
    script.write_text(json.dumps({"rules": [{"reply": {"content": "x"}, "times": 0}]}))
    process = await asyncio.create_subprocess_exec(
        COMMAND, "--script", str(script), stderr=asyncio.subprocess.PIPE
    )
    _, err = await process.communicate()
    assert process.returncode == 2
    assert "times must be >= 1" in err.decode()
