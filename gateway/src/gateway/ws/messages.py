"""What a `/ws/chat` client may send, and the refusal for anything else (never a crash)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import ValidationError

from contracts.errors import ErrorCode
from contracts.ui_events import (
    WS_CLIENT_MESSAGE_ADAPTER,
    WsAuthMessage,
    WsChatMessage,
    WsErrorCode,
    WsPingMessage,
    WsResumeMessage,
    WsStopMessage,
)

ClientMessage = WsAuthMessage | WsChatMessage | WsPingMessage | WsStopMessage | WsResumeMessage


@dataclass(frozen=True, slots=True)
class Refusal:
    """A client message the socket cannot take: the error code and message to answer with."""

    code: str
    message: str


def parse_client_message(text: str) -> ClientMessage | Refusal:
    """A client message, or what is wrong with it (an input error, never an identity one)."""
    try:
        return WS_CLIENT_MESSAGE_ADAPTER.validate_json(text)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
    try:
        data = json.loads(text)
    except RecursionError:  # nested past the decoder's limit: refuse, never crash the socket
        return _unreadable("nested too deeply")
    except ValueError:
        return _unreadable("not JSON")
    kind = data.get("type") if isinstance(data, dict) else None
    if kind not in ("auth", "message", "ping", "stop", "resume"):
        return _unreadable("no known type")
    # Locations start with the union's tag (the message type); the field follows.
    fields = [(tuple(str(p) for p in e["loc"][1:]), e) for e in errors]
    if any(loc == ("message",) and e["type"] == "string_too_short" for loc, e in fields):
        return Refusal(WsErrorCode.EMPTY_MESSAGE, "The message is empty.")
    problems = "; ".join(f"{'.'.join(loc) or 'message'}: {e['msg']}" for loc, e in fields)
    return Refusal(ErrorCode.INVALID_REQUEST, f"An invalid {kind!r} message ({problems}).")


def _unreadable(why: str) -> Refusal:
    return Refusal(
        ErrorCode.INVALID_REQUEST,
        f"Could not read the message ({why}); send auth, message, ping, stop or resume.",
    )
