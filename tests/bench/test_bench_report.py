"""The harness's pure parts: percentiles, target verdicts, the hand-written SVG plot."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from benchmarks.report import evaluate_targets, render_markdown
from benchmarks.stats import percentile
from benchmarks.svg_plot import Panel, Series, render


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 50, None),
        ([5.0], 99, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.0),
        (list(map(float, range(1, 101))), 99, 99.0),
        (list(map(float, range(1, 101))), 100, 100.0),
        ([3.0, 1.0, 2.0], 0, 1.0),
    ],
)
def test_percentile_is_nearest_rank(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(values, q) == expected


def _results(
    ratio: float,
    ttft_p99: float,
    errors: int,
    s3: float,
    s4: float,
    gap: float = 40.0,
    fixed_ms: float = 7.0,
) -> dict[str, Any]:
    per = {"agent": 10.0, "gateway": 5.0, "fake": 2.0, "client": 9.0}
    s1_path = {
        "us_per_token": per,
        "tokens_per_s": 1000.0,
        "stack_us_per_token": 15.0,
        "ratio_to_floor": ratio,
    }
    row = {
        "added_ttft_p50_ms": 1.0,
        "added_ttft_p99_ms": ttft_p99,
        "added_ttft_max_ms": 9.0,
        "gap_p50_ms": 33.0,
        "gap_p99_ms": gap,
        "gap_max_ms": 50.0,
        "errors": errors,
        "error_kinds": {"cut": errors} if errors else {},
        "processes": {},
        "ratio_to_floor": {"added_ttft_p99_ms": 2.0, "gap_p99_ms": 1.0},
    }
    return {
        "meta": {
            "mode": "full",
            "started_utc": "2026-01-01T00:00:00Z",
            "duration_s": 1.0,
            "cpus": 2,
            "python": "3.11",
            "fd_limit": 1024,
            "config": {
                "s1_tokens": 5000,
                "s1_reps": 3,
                "s2_tokens": 200,
                "s2_tps": 30.0,
                "s2_ttft_ms": 200.0,
                "s2_rounds": 2,
                "s2_timeout_s": 90.0,
                "s3_tps": 1.0,
            },
        },
        "s1": {
            "floor": {"us_per_token": per, "tokens_per_s": 1.0},
            "sse": s1_path,
            "ws": s1_path,
            "floor_us_per_token": 3.0,
            "per_request": {
                "requests": 100,
                **{
                    path: {
                        "cpu_ms": {
                            "agent": fixed_ms * 0.75 if path != "floor" else 0.0,
                            "gateway": fixed_ms * 0.25 if path != "floor" else 0.0,
                            "fake": 1.0,
                        },
                        "wall_ms": 12.0,
                    }
                    for path in ("floor", "sse", "ws")
                },
            },
        },
        "s2": [{**row, "path": p, "n": n} for n in (100, 400) for p in ("floor", "sse", "ws")],
        "s3": {
            "streams": 500,
            "opened": 500,
            "kib_per_stream": {"agent": s3 / 2, "gateway": s3 / 2},
            "stack_kib_per_stream": s3,
            "floor_kib_per_stream": 10.0,
            "ratio_to_floor": s3 / 10,
            "model_calls_cancelled": 500,
        },
        "s4": {
            "connections": 5000,
            "opened": 5000,
            "gateway_kib_per_connection": s4,
            "floor_kib_per_connection": 5.0,
            "ratio_to_floor": s4 / 5,
        },
    }


def test_targets_met_and_missed() -> None:
    good = evaluate_targets(_results(ratio=2.9, ttft_p99=100.0, errors=0, s3=40.0, s4=10.0))
    assert good and all(t["met"] for t in good)
    bad = {
        t["target"]: t["met"]
        for t in evaluate_targets(
            _results(ratio=3.1, ttft_p99=151.0, errors=1, s3=49.0, s4=21.0, gap=81.0, fixed_ms=8.1)
        )
    }
    assert not any(bad.values())
    # S2 is judged at the largest concurrency only
    assert all("at 400" in name for name in bad if name.startswith("S2"))


def test_markdown_marks_a_missed_target() -> None:
    results = _results(ratio=6.0, ttft_p99=100.0, errors=0, s3=40.0, s4=10.0)
    results["targets"] = evaluate_targets(results)
    text = render_markdown(results)
    assert "| S1 sse: agent + gateway CPU per token | 6.00 × floor | 3.0 × floor | **no** |" in text


def test_svg_plot_is_valid_and_draws_each_series() -> None:
    svg = render(
        [
            Panel(
                "TTFT",
                "streams",
                "ms",
                [
                    Series("floor p99", [(100, 2.0), (400, 5.0)]),
                    Series("sse p99", [(100, 50.0), (400, 9000.0)]),
                ],
                150,
            ),
            Panel("gap", "streams", "ms", [Series("ws p99", [(100, 34.0), (400, 60.0)])], 80),
        ]
    )
    root = ET.fromstring(svg)
    lines = root.findall(".//{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == 3
    assert "target 150" in svg and "(log)" in svg  # 2 → 9000 ms is drawn on a log axis
