"""`evals` reaches the agent service through one adapter module, so moving agent modules
means fixing one import block."""

from __future__ import annotations

import ast
from pathlib import Path

EVALS = Path(__file__).resolve().parents[2] / "evals"


def test_only_the_adapter_imports_agent_service() -> None:
    importers = set()
    for path in EVALS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(n.split(".")[0] == "agent_service" for n in names):
                importers.add(path.name)
    assert importers == {"agent_adapter.py"}
