"""Reading a JSON request body into a model: 400/413/415 with a clear reason, never a 500;
the body of the gateway's own chat routes."""

from __future__ import annotations

import asyncio
import json
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from contracts.agent_api import Identifier, Message
from gateway.app_state import SETTINGS
from gateway.errors import BodyTimeout, InvalidRequest, PayloadTooLarge, UnsupportedMediaType

M = TypeVar("M", bound=BaseModel)


class ChatStreamBody(BaseModel):
    """Body of `POST /api/chat/stream` and `POST /api/chat/complete`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message: Message
    conversation_id: Identifier | None = None


def validation_details(exc: ValidationError) -> list[dict[str, str]]:
    """One `{"field", "problem"}` entry per invalid field."""
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "body", "problem": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


async def read_json(request: web.Request, model: type[M], *, max_bytes: int | None = None) -> M:
    """The body parsed as `model`; refuses non-JSON, oversized (over `max_bytes` if given, else
    the app's `client_max_size`), slow (`body_read_timeout_s`) and invalid bodies."""
    if request.content_type != "application/json":
        # Not even text/plain: a JSON body under a "simple" content type is a cross-site form
        # post that skips the CORS preflight; application/json always gets one.
        raise UnsupportedMediaType("Send the body as application/json.")
    # A clone shares the body stream; only its size limit differs.
    reader = request if max_bytes is None else request.clone(client_max_size=max_bytes)
    deadline_s = request.app[SETTINGS].body_read_timeout_s
    try:
        async with asyncio.timeout(deadline_s):
            raw = await reader.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise PayloadTooLarge(f"The body is larger than {reader.client_max_size} bytes.") from exc
    except TimeoutError as exc:
        # One byte a second would otherwise hold the connection (and its handler) for as long
        # as the sender likes; the connection is closed with the 408.
        raise BodyTimeout(f"The request body did not arrive within {deadline_s:g} s.") from exc
    if not raw:
        raise InvalidRequest("The request body is empty; send a JSON object.")
    try:
        data = json.loads(raw)
    except RecursionError as exc:  # "[" * 100000: the decoder's nesting limit, not a server bug
        raise InvalidRequest("The request body is nested too deeply.") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest("The request body is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(
            "The request body is invalid.", details=validation_details(exc)
        ) from exc
