"""Export the contract's JSON Schemas: `python -m contracts.schema_export [--check] [--out DIR]`.

The files in `contracts/schemas/` are committed so non-Python callers can use them; a test fails
when they drift from the models. If `contracts.ui_events` exists and defines the `UiEvent` union,
its schema is exported too, as `ui_event.schema.json` (it is picked up automatically).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, TypeAdapter

from contracts.agent_api import (
    AGENT_EVENT_ADAPTER,
    ChatRequest,
    ChatResponse,
    ConversationHistory,
    ConversationList,
)
from contracts.errors import ErrorBody

DEFAULT_DIR: Final = Path(__file__).resolve().parents[2] / "schemas"
"""`contracts/schemas` in a source checkout (the workspace installs contracts editable)."""
SUFFIX: Final = ".schema.json"
_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"


def _targets() -> dict[str, tuple[str, type[BaseModel] | TypeAdapter[Any]]]:
    """File stem -> (title, model or adapter), in a fixed order."""
    targets: dict[str, tuple[str, type[BaseModel] | TypeAdapter[Any]]] = {
        "chat_request": ("ChatRequest", ChatRequest),
        "agent_event": ("AgentEvent", AGENT_EVENT_ADAPTER),
        "chat_response": ("ChatResponse", ChatResponse),
        "error_body": ("ErrorBody", ErrorBody),
        "conversation_list": ("ConversationList", ConversationList),
        "conversation_history": ("ConversationHistory", ConversationHistory),
    }
    # The public UI event union lives in its own module, which may not exist in every checkout.
    if importlib.util.find_spec("contracts.ui_events") is not None:
        ui_events = importlib.import_module("contracts.ui_events")
        union = getattr(ui_events, "UiEvent", None)
        if union is not None:
            targets["ui_event"] = ("UiEvent", TypeAdapter(union))
    return targets


def render_schemas() -> dict[str, str]:
    """File name -> schema text (validation mode, sorted keys, indent 2, trailing newline)."""
    rendered: dict[str, str] = {}
    for stem, (title, target) in _targets().items():
        if isinstance(target, TypeAdapter):
            schema = target.json_schema()
        else:
            schema = target.model_json_schema()
        schema.setdefault("title", title)
        schema["$schema"] = _DIALECT
        text = json.dumps(schema, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
        rendered[stem + SUFFIX] = text
    return rendered


def export_schemas(out_dir: Path | str = DEFAULT_DIR) -> dict[str, str]:
    """Write all schema files into `out_dir` (created if missing), drop stale ones; name -> text."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rendered = render_schemas()
    for stale in out.glob("*" + SUFFIX):
        if stale.name not in rendered:
            stale.unlink()
    for name, text in rendered.items():
        path = out / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    return rendered


def drifted_schemas(schema_dir: Path | str = DEFAULT_DIR) -> list[str]:
    """Names of schema files in `schema_dir` that are missing, different or no longer produced."""
    directory = Path(schema_dir)
    rendered = render_schemas()
    drifted = [
        name
        for name, text in rendered.items()
        if not (directory / name).is_file()
        or (directory / name).read_text(encoding="utf-8") != text
    ]
    if directory.is_dir():
        drifted += sorted(p.name for p in directory.glob("*" + SUFFIX) if p.name not in rendered)
    return drifted


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status (1 when `--check` finds drift)."""
    parser = argparse.ArgumentParser(prog="python -m contracts.schema_export", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if committed files drifted")
    parser.add_argument("--out", type=Path, default=DEFAULT_DIR, help="schema directory")
    args = parser.parse_args(argv)
    if args.check:
        drifted = drifted_schemas(args.out)
        if drifted:
            sys.stderr.write(
                f"JSON Schemas in {args.out} are out of date: {', '.join(drifted)}\n"
                "Run `uv run python -m contracts.schema_export` and commit the result.\n"
            )
            return 1
        return 0
    for name in export_schemas(args.out):
        sys.stdout.write(f"wrote {args.out / name}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
