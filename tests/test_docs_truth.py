"""The docs name every setting that exists, and the tiers never import each other."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

from agent_service.settings import AgentSettings

ROOT = Path(__file__).resolve().parent.parent


def configuration_section(title: str) -> str:
    """One `## ` section of docs/configuration.md, the one page that lists every setting."""
    page = (ROOT / "docs" / "configuration.md").read_text()
    return page.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_every_agent_setting_is_documented() -> None:
    doc = configuration_section("Agent service")
    missing = [
        f"AGENT_{name.upper()}"
        for name in AgentSettings.model_fields
        if f"| `AGENT_{name.upper()}` |" not in doc
    ]
    assert not missing, f"docs/configuration.md's Agent service section lacks {missing}"


def _imports(package_dir: Path) -> set[str]:
    found: set[str] = set()
    for path in package_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def test_tiers_never_import_each_other() -> None:
    assert "gateway" not in _imports(ROOT / "services" / "agent" / "src" / "agent_service")
    assert "agent_service" not in _imports(ROOT / "gateway" / "src" / "gateway")
    assert not {"gateway", "agent_service"} & _imports(ROOT / "contracts" / "src" / "contracts")


def test_the_architecture_page_maps_every_module() -> None:
    """A newcomer finds any module from docs/architecture.md: its module maps are current."""
    spec = importlib.util.spec_from_file_location("module_map", ROOT / "scripts/module_map.py")
    assert spec is not None and spec.loader is not None
    module_map = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module_map)
    page = module_map.PAGE.read_text(encoding="utf-8")
    assert module_map.render(page) == page, "stale module maps: run `make docs`"
    for package in module_map.PACKAGES.values():
        for path in package.rglob("*.py"):
            if path.name != "__init__.py":
                assert f"`{path.relative_to(package).as_posix()}`" in page, path


_SOURCES = ("docs", "services", "gateway", "contracts", "benchmarks", "evals", "scripts", "tests")
_MARKERS = ("<<<<<<< ", ">>>>>>> ")


def test_no_merge_conflict_is_left_in_the_tree() -> None:
    """A conflict committed by mistake (docs/real-model.md carried one for a while)."""
    left = [
        f"{path.relative_to(ROOT)}:{number}"
        for top in _SOURCES
        for path in sorted((ROOT / top).rglob("*"))
        if path.suffix in {".md", ".py", ".toml", ".yml", ".yaml", ".js", ".css", ".html", ".sql"}
        and ".venv" not in path.parts
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if line.startswith(_MARKERS) or line == "======="
    ]
    left += [
        f"{name}:{number}"
        for name in ("README.md", "Makefile", "docker-compose.yml", "pyproject.toml")
        for number, line in enumerate((ROOT / name).read_text().splitlines(), 1)
        if line.startswith(_MARKERS)
    ]
    assert not left, f"merge conflict markers left at {left}"
