"""The benchmark harness end to end in smoke mode: real processes, tiny sizes, a tmp dir."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

# S5 runs two workers per tier: the agent's on PostgreSQL, the gateway's on Redis
pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


def _numbers(obj: dict[str, Any], *keys: str) -> None:
    for key in keys:
        value = obj[key]
        assert isinstance(value, int | float) and not isinstance(value, bool), (key, value)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run `python -m benchmarks.run --smoke` once, writing into a temporary directory."""
    out = tmp_path_factory.mktemp("bench-out")
    docs_json = ROOT / "docs" / "benchmarks.json"
    before = docs_json.read_bytes() if docs_json.exists() else None
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.run",
            "--smoke",
            "--out",
            str(out),
            "--workdir",
            str(out / "work"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = docs_json.read_bytes() if docs_json.exists() else None
    assert before == after, "a smoke run must never rewrite docs/"
    return out


def test_json_has_every_scenario_with_numbers(smoke_run: Path) -> None:
    results = json.loads((smoke_run / "benchmarks.json").read_text())
    assert results["meta"]["mode"] == "smoke"
    s1 = results["s1"]
    _numbers(s1, "floor_us_per_token", "tokens")
    assert s1["floor_us_per_token"] > 0
    for path in ("sse", "ws"):
        _numbers(s1[path], "stack_us_per_token", "ratio_to_floor", "tokens_per_s")
        _numbers(s1[path]["us_per_token"], "agent", "gateway", "fake", "client")
    rows = results["s2"]
    assert {(r["n"], r["path"]) for r in rows} == {
        (n, p) for n in results["meta"]["config"]["s2_concurrency"] for p in ("floor", "sse", "ws")
    }
    for row in rows:
        _numbers(row, "added_ttft_p50_ms", "added_ttft_p99_ms", "gap_p99_ms", "errors")
        assert row["errors"] == 0, row["error_kinds"]
        if row["path"] != "floor":
            _numbers(row["ratio_to_floor"], "added_ttft_p99_ms", "gap_p99_ms")
    s3 = results["s3"]
    assert s3["opened"] == s3["streams"]
    _numbers(s3, "stack_kib_per_stream", "floor_kib_per_stream")
    _numbers(s3["kib_per_stream"], "agent", "gateway")
    # hanging up on the open streams closed the model calls behind them
    assert s3["model_calls_cancelled"] >= s3["streams"]
    assert s3["runs_not_unwound_in_grace"] == 0
    s4 = results["s4"]
    assert s4["opened"] == s4["connections"]
    _numbers(s4, "gateway_kib_per_connection", "floor_kib_per_connection")
    s5 = results["s5"]
    assert s5["workers"] == 2
    assert [r["n"] for r in s5["rows"]] == list(results["meta"]["config"]["s5_concurrency"])
    for row in s5["rows"]:
        assert row["errors"] == 0, row["error_kinds"]
        _numbers(row["cpu_ms_per_stream"], "agent", "gateway")
    _numbers(s5, "held", "streams_per_core")
    names = [t["target"] for t in results["targets"]]
    assert any(n.startswith("S1") for n in names) and any(n.startswith("S4") for n in names)
    assert all(isinstance(t["met"], bool) for t in results["targets"])


def test_markdown_reports_every_scenario_and_links_the_plot(smoke_run: Path) -> None:
    text = (smoke_run / "benchmarks.md").read_text()
    for heading in ("## Targets", "## S1", "## S2", "## S3", "## S4", "## S5"):
        assert heading in text
    assert "× floor" in text
    assert "](benchmarks-latency.svg)" in text
    assert ".venv/bin/python -m benchmarks.run" in text
    svg = ET.parse(smoke_run / "benchmarks-latency.svg").getroot()
    assert svg.tag.endswith("svg")
    lines = svg.findall(".//{http://www.w3.org/2000/svg}polyline")
    assert len(lines) >= 3  # a line per path at least
