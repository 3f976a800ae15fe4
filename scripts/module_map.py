"""Write the module maps of docs/architecture.md from the code: one row per module, its path and
the first paragraph of its docstring.

The rows sit between `<!-- modules:NAME -->` and `<!-- /modules:NAME -->` markers; everything else
in the page is written by hand. `tests/test_docs_truth.py` fails when a module is missing from the
page, so run `make docs` after adding one (`--check` exits 1 instead of writing).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "architecture.md"
PACKAGES = {
    "agent": ROOT / "services/agent/src/agent_service",
    "gateway": ROOT / "gateway/src/gateway",
    "contracts": ROOT / "contracts/src/contracts",
}


def summary(path: Path) -> str:
    """The first paragraph of a module's docstring, on one line (pipes escaped for the table)."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    first = " ".join(doc.strip().split("\n\n")[0].split())
    return first.replace("|", "\\|")


def rows(package: Path) -> list[str]:
    out = ["| module | what it is |", "|---|---|"]
    for path in sorted(package.rglob("*.py")):
        if path.name == "__init__.py":
            continue
        out.append(f"| `{path.relative_to(package).as_posix()}` | {summary(path)} |")
    return out


def render(page: str) -> str:
    for name, package in PACKAGES.items():
        start, end = f"<!-- modules:{name} -->", f"<!-- /modules:{name} -->"
        pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
        if not pattern.search(page):
            raise SystemExit(f"{PAGE}: no {start} … {end} region")
        table = "\n".join([start, *rows(package), end])
        found = pattern.search(page)
        assert found is not None
        page = page[: found.start()] + table + page[found.end() :]
    return page


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the page is stale")
    args = parser.parse_args(argv)
    current = PAGE.read_text(encoding="utf-8")
    fresh = render(current)
    if args.check:
        return 0 if fresh == current else 1
    PAGE.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
