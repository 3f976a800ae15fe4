"""The committed JSON Schemas match the models, and the exporter's check catches drift."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from contracts.agent_api import EVENT_NAMES
from contracts.schema_export import DEFAULT_DIR, drifted_schemas, export_schemas, main

FIX = "run `uv run python -m contracts.schema_export` and commit contracts/schemas/"


def test_committed_schemas_match_the_models(tmp_path: Path) -> None:
    fresh = export_schemas(tmp_path)
    committed = {p.name: p.read_text(encoding="utf-8") for p in DEFAULT_DIR.glob("*.schema.json")}
    assert sorted(committed) == sorted(fresh), f"schema files differ: {FIX}"
    for name, text in fresh.items():
        assert committed[name] == text, f"{name} drifted from the models: {FIX}"


def test_every_contract_schema_is_exported(tmp_path: Path) -> None:
    names = set(export_schemas(tmp_path))
    expected = {
        "chat_request.schema.json",
        "agent_event.schema.json",
        "chat_response.schema.json",
        "error_body.schema.json",
        "conversation_list.schema.json",
        "conversation_history.schema.json",
    }
    if importlib.util.find_spec("contracts.ui_events") is not None:
        expected.add("ui_event.schema.json")
    assert names == expected
    for name in names:
        text = (tmp_path / name).read_text(encoding="utf-8")
        assert text.endswith("}\n")
        assert json.loads(text)["$schema"].startswith("https://json-schema.org/")


def test_agent_event_schema_discriminates_every_event(tmp_path: Path) -> None:
    schema = json.loads(export_schemas(tmp_path)["agent_event.schema.json"])
    assert schema["discriminator"]["propertyName"] == "event"
    assert set(schema["discriminator"]["mapping"]) == EVENT_NAMES


def test_check_reports_changed_missing_and_stale_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export_schemas(tmp_path)
    assert main(["--check", "--out", str(tmp_path)]) == 0
    assert drifted_schemas(tmp_path) == []

    (tmp_path / "error_body.schema.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "chat_request.schema.json").unlink()
    (tmp_path / "old_thing.schema.json").write_text("{}\n", encoding="utf-8")
    assert sorted(drifted_schemas(tmp_path)) == [
        "chat_request.schema.json",
        "error_body.schema.json",
        "old_thing.schema.json",
    ]
    assert main(["--check", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "error_body.schema.json" in err
    assert "uv run python -m contracts.schema_export" in err

    assert main(["--out", str(tmp_path)]) == 0  # a plain export repairs everything
    assert drifted_schemas(tmp_path) == []
    assert not (tmp_path / "old_thing.schema.json").exists()
