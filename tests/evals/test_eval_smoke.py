"""The eval end to end on a few questions: the real app in process, both document stores, the
report files. It checks the report's shape, not that the scores are high."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.items import CATEGORIES, load_items
from evals.run import main

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SMOKE_IDS = (
    "acme-active-working",
    "acme-rev-oct",
    "acme-cancel-pct",
    "bp-on-leave",
    "bp-ot-kick-in",
    "cw-sunday",
    "acme-fu-month-before",
    "bp-refuse-forecast",
    "cw-refuse-priority",
    "acme-x-bluepeak-techs",
)


def test_the_question_set_is_big_and_covers_every_category_and_company() -> None:
    items = load_items()
    assert len(items) >= 150
    assert {i.category for i in items} == set(CATEGORIES)
    assert {i.company for i in items} == {"acme-hvac", "bluepeak-plumbing", "citywide-electric"}
    assert all(i.before for i in items if i.category == "followup")


async def test_a_smoke_run_writes_a_scored_report(tmp_path: Path) -> None:
    assert await main(["--ids", ",".join(SMOKE_IDS), "--out", str(tmp_path)]) == 0
    body = json.loads((tmp_path / "evals.json").read_text())
    assert sorted(i["id"] for i in body["items"]) == sorted(SMOKE_IDS)
    assert {i["outcome"] for i in body["items"]} <= {"right", "refused", "wrong"}
    assert all(i["got"] for i in body["items"])
    assert body["summary"]["total"] == len(SMOKE_IDS)
    per = body["summary"]["categories"]
    assert sum(row["n"] for row in per.values()) == len(SMOKE_IDS)
    for engine in ("sqlite-fts5", "postgres"):
        recall = body["recall"][engine]["table"]
        assert recall["all"]["n"] == 2  # the two standalone document questions
        assert set(recall["all"]) == {"n", "recall@1", "recall@3", "recall@5"}
    markdown = (tmp_path / "evals.md").read_text()
    assert "## Results" in markdown and "## Retrieval recall@k" in markdown
    assert "## Wrong answers" in markdown
