"""docs/evals.md: how to run the eval, the scoring rules, and this run's results."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals.report import Scored

HEADER_FILE = Path(__file__).with_name("header.md")


def render(
    run: dict[str, Any], summary: dict[str, Any], scored: Sequence[Scored], recall: dict[str, Any]
) -> str:
    header = HEADER_FILE.read_text(encoding="utf-8").format(n=summary["total"])
    out = [header, "## Results\n"]
    out.append(f"Target: {run['target']}; provider: {run['provider']}.\n")
    out.append("| category | n | right | refused | wrong | right % |")
    out.append("|---|---:|---:|---:|---:|---:|")
    for name, row in summary["categories"].items():
        out.append(
            f"| {name} | {row['n']} | {row['right']} | {row['refused']} | {row['wrong']} |"
            f" {_pct(row['right_pct'])} |"
        )
    out.append("")
    accuracy = _pct(summary["answerable_accuracy_pct"])
    out.append(f"- Answerable accuracy (data, documents, follow-ups): **{accuracy}**")
    out.append(
        "- Must-refuse and cross-tenant refused with a reason: "
        f"**{_pct(summary['must_refuse_refused_with_reason_pct'])}**"
    )
    out.append(f"- Wrong answers: **{summary['wrong']}** of {summary['total']}\n")
    out.append("## Retrieval recall@k\n")
    out.append("| engine | company | n | recall@1 | recall@3 | recall@5 |")
    out.append("|---|---|---:|---:|---:|---:|")
    for engine, per in recall.items():
        if "error" in per:
            out.append(f"| {engine} | not measured: {per['error']} | | | | |")
            continue
        for company, row in per["table"].items():
            out.append(
                f"| {engine} | {company} | {row['n']} | {_share(row['recall@1'])} |"
                f" {_share(row['recall@3'])} | {_share(row['recall@5'])} |"
            )
    out.append("")
    misses = {e: list(per.get("misses", ())) for e, per in recall.items()}
    if any(misses.values()):
        out.append("Questions whose section is not in the top 3:\n")
        for engine, rows in misses.items():
            for m in rows:
                rank = m["rank"] or "> 5"
                out.append(f"- {engine}, `{m['id']}` ({m['company']}): {m['ask']} — rank {rank}")
        out.append("")
    out.append("## Wrong answers\n")
    wrong = [s for s in scored if s.verdict.outcome == "wrong"]
    if not wrong:
        out.append("None.\n")
    for s in wrong:
        row = s.as_json()
        asked = " → ".join([*row["before"], row["ask"]])
        out.append(
            f"- `{row['id']}` ({row['category']}, {row['kind']}, {row['company']}): {_md(asked)}"
        )
        out.append(f"  - expected: {_md(str(row['expected']))}")
        out.append(f"  - got: {_md(row['got'])}")
        out.append(f"  - why: {_md(row['why'])}")
    refused = [s for s in scored if s.verdict.outcome == "refused"]
    if refused:
        out.append("\n## Refused (answerable, or refused without a reason)\n")
        for s in refused:
            where = f"{s.item.category}, {s.item.kind}"
            out.append(f"- `{s.item.id}` ({where}): {_md(s.item.ask)} — {_md(s.reply.text)}")
    return "\n".join(out) + "\n"


def _md(text: str, limit: int = 400) -> str:
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} %"


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f} %"
