"""A scriptable fake OpenAI-compatible server."""

from fake_openai.app import create_app, fake_state
from fake_openai.knobs import Fault, Timing
from fake_openai.record import FakeState, RecordedDisconnect, RecordedRequest
from fake_openai.script import ErrorReply, Match, Reply, Rule, Script, ScriptError, ToolCall
from fake_openai.script_file import load_script, parse_script
from fake_openai.server import FakeServer, running_fake_openai
from fake_openai.settings import FakeSettings

__all__ = [
    "ErrorReply",
    "FakeServer",
    "FakeSettings",
    "FakeState",
    "Fault",
    "Match",
    "RecordedDisconnect",
    "RecordedRequest",
    "Reply",
    "Rule",
    "Script",
    "ScriptError",
    "Timing",
    "ToolCall",
    "create_app",
    "fake_state",
    "load_script",
    "parse_script",
    "running_fake_openai",
]
