"""The script file format (YAML or JSON): parsing a mapping into a `Script`, with clear errors."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fake_openai.knobs import Fault, Timing
from fake_openai.script import ErrorReply, Match, Reply, Rule, Script, ScriptError, ToolCall

_MATCH_KEYS = frozenset(Match.__dataclass_fields__) - {"_regexes"}
_TIMING_KEYS = frozenset(Timing.__dataclass_fields__)
_FAULT_KEYS = frozenset(Fault.__dataclass_fields__)
_ERROR_KEYS = frozenset(ErrorReply.__dataclass_fields__)
_REPLY_KEYS = frozenset(
    {"content", "filler_tokens", "tool_calls", "json", "error", "finish_reason"}
)
_RULE_KEYS = frozenset({"name", "match", "reply", "times", "timing", "fault"})
_SCRIPT_KEYS = frozenset({"rules", "default", "timing"})


def _mapping(value: Any, where: str, allowed: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ScriptError(f"{where} must be an object, got {type(value).__name__}")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ScriptError(f"{where} has unknown keys {unknown}; allowed: {sorted(allowed)}")
    return value


def _build(cls: Any, value: Any, where: str, allowed: frozenset[str]) -> Any:
    fields = _mapping(value, where, allowed)
    try:
        return cls(**fields)
    except ScriptError as exc:
        raise ScriptError(f"{where}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ScriptError(f"{where}: {exc}") from None


def _tool_call(value: Any, where: str) -> ToolCall:
    fields = _mapping(value, where, frozenset({"name", "arguments", "id"}))
    if not isinstance(fields.get("name"), str) or not fields["name"]:
        raise ScriptError(f"{where}.name must be a non-empty string")
    arguments = fields.get("arguments", {})
    if not isinstance(arguments, dict | str):
        raise ScriptError(f"{where}.arguments must be an object or a JSON string")
    call_id = fields.get("id")
    if call_id is not None and not isinstance(call_id, str):
        raise ScriptError(f"{where}.id must be a string")
    return ToolCall(name=fields["name"], arguments=arguments, id=call_id)


def parse_reply(value: Any, where: str = "reply") -> Reply:
    """Build a `Reply` from its file form (`json` is the key for a structured-output value)."""
    fields = dict(_mapping(value, where, _REPLY_KEYS))
    content = fields.get("content")
    if content is not None and not isinstance(content, str):
        raise ScriptError(f"{where}.content must be a string")
    filler = fields.get("filler_tokens")
    if filler is not None and (not isinstance(filler, int) or isinstance(filler, bool)):
        raise ScriptError(f"{where}.filler_tokens must be an integer")
    calls = fields.get("tool_calls", [])
    if not isinstance(calls, list):
        raise ScriptError(f"{where}.tool_calls must be an array")
    finish = fields.get("finish_reason")
    if finish not in (None, "stop", "length", "tool_calls", "content_filter"):
        raise ScriptError(
            f"{where}.finish_reason must be stop, length, tool_calls or content_filter"
        )
    error = fields.get("error")
    kwargs: dict[str, Any] = {
        "content": content,
        "filler_tokens": filler,
        "tool_calls": tuple(_tool_call(c, f"{where}.tool_calls[{i}]") for i, c in enumerate(calls)),
        "error": None
        if error is None
        else _build(ErrorReply, error, f"{where}.error", _ERROR_KEYS),
        "finish_reason": finish,
    }
    if "json" in fields:
        kwargs["json_value"] = fields["json"]
    if all(v in (None, ()) for v in kwargs.values()):
        raise ScriptError(f"{where} needs one of {sorted(_REPLY_KEYS - {'finish_reason'})}")
    try:
        return Reply(**kwargs)
    except ScriptError as exc:
        raise ScriptError(f"{where}: {exc}") from None


def parse_rule(value: Any, where: str = "rule") -> Rule:
    """Build a `Rule` from its file form."""
    fields = _mapping(value, where, _RULE_KEYS)
    if "reply" not in fields:
        raise ScriptError(f"{where} needs a reply")
    times = fields.get("times")
    if times is not None and (not isinstance(times, int) or isinstance(times, bool)):
        raise ScriptError(f"{where}.times must be an integer")
    name = fields.get("name")
    if name is not None and not isinstance(name, str):
        raise ScriptError(f"{where}.name must be a string")
    try:
        return Rule(
            name=name,
            match=_build(Match, fields.get("match", {}), f"{where}.match", _MATCH_KEYS),
            reply=parse_reply(fields["reply"], f"{where}.reply"),
            times=times,
            timing=None
            if fields.get("timing") is None
            else _build(Timing, fields["timing"], f"{where}.timing", _TIMING_KEYS),
            fault=None
            if fields.get("fault") is None
            else _build(Fault, fields["fault"], f"{where}.fault", _FAULT_KEYS),
        )
    except ScriptError as exc:
        raise ScriptError(str(exc) if str(exc).startswith(where) else f"{where}: {exc}") from None


def parse_script(value: Any) -> Script:
    """Build a `Script` from `{"rules": [...], "default": {rule}, "timing": {...}}`."""
    fields = _mapping(value, "script", _SCRIPT_KEYS)
    rules = fields.get("rules", [])
    if not isinstance(rules, list):
        raise ScriptError("script.rules must be an array")
    parsed = tuple(parse_rule(r, f"rules[{i}]") for i, r in enumerate(rules))
    script = Script(rules=parsed)
    if fields.get("default") is not None:
        default = parse_rule(fields["default"], "default")
        script = Script(rules=parsed, default=default)
    if fields.get("timing") is not None:
        timing = _build(Timing, fields["timing"], "script.timing", _TIMING_KEYS)
        script = Script(rules=script.rules, default=script.default, timing=timing)
    return script


def load_script(path: str | Path) -> Script:
    """Read a script from a `.json`, `.yaml` or `.yml` file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScriptError(f"cannot read script {path}: {exc}") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            # PyYAML is optional: only YAML scripts need it.
            import yaml
        except ImportError:
            raise ScriptError("YAML scripts need PyYAML installed; use JSON instead") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ScriptError(f"{path} is not valid YAML: {exc}") from None
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ScriptError(f"{path} is not valid JSON: {exc}") from None
    try:
        return parse_script(data)
    except ScriptError as exc:
        raise ScriptError(f"{path}: {exc}") from None
