"""The Starlette app: `/v1/chat/completions`, `/v1/embeddings`, `/v1/models`, and the `/_fake/*`
control endpoints."""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from fake_openai.completion import build_completion
from fake_openai.delivery import Delivery, deliver
from fake_openai.embeddings import embeddings_response
from fake_openai.knobs import Pace
from fake_openai.record import FakeState, RecordedRequest, public_headers
from fake_openai.request import ChatRequest, RequestError, parse_chat_request
from fake_openai.script import Rule, Script
from fake_openai.script_file import parse_script
from fake_openai.settings import FakeSettings
from fake_openai.wire import Envelope, completion_body, dumps, error_body, stream_frames

_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def fake_state(app: Starlette) -> FakeState:
    """The live state of an app built by `create_app`."""
    state: FakeState = app.state.fake
    return state


def _error(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return Response(
        error_body(message, type=type, code=code, param=param),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(f"The request body exceeds {limit} bytes.", status=413)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(f"The request body exceeds {limit} bytes.", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


class _DeliveryResponse(Response):
    """Hands the ASGI channel to `deliver` and records a client that left early."""

    def __init__(self, delivery: Delivery, state: FakeState, seq: int, rule: Rule) -> None:
        self.delivery = delivery
        self.state = state
        self.seq = seq
        self.rule = rule
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.state.active_responses += 1
        try:
            finished = await deliver(self.delivery, receive, send)
        finally:
            self.state.active_responses -= 1
        if not finished:
            self.state.record_disconnect(
                self.seq, scope["path"], self.rule.name, self.delivery.frames_sent
            )


def _rule_response(
    state: FakeState, settings: FakeSettings, chat: ChatRequest, rule: Rule, seq: int
) -> Response:
    reply = rule.reply
    if reply.error is not None:
        error = reply.error
        extra = None
        if error.retry_after is not None:
            extra = {"retry-after": f"{error.retry_after:g}"}
        return _error(
            error.status, error.message, type=error.error_type, code=error.code, headers=extra
        )
    completion = build_completion(chat, reply, call_id_prefix=f"call_{seq}")
    envelope = Envelope(
        id=f"chatcmpl-fake{seq}",
        created=int(time.time()),
        model=chat.model,
        system_fingerprint=settings.system_fingerprint,
    )
    pace = Pace.resolve(rule.timing, state.script.timing, settings.timing)
    request_id = [(b"x-request-id", f"req_fake{seq}".encode())]
    if chat.stream:
        frames = stream_frames(
            completion, envelope, include_usage=chat.include_usage, pace=pace, cache=state.deltas
        )
        headers = _SSE_HEADERS + request_id
        body = b""
    else:
        frames = None
        body = completion_body(completion, envelope)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *request_id,
        ]
    delivery = Delivery(
        headers=headers,
        frames=frames,
        body=body,
        pace=pace,
        fault=rule.fault,
        batch_bytes=settings.write_batch_bytes,
        closing=state.closing,
        completion_tokens=completion.completion_tokens,
    )
    return _DeliveryResponse(delivery, state, seq, rule)


def create_app(script: Script | None = None, *, settings: FakeSettings | None = None) -> Starlette:
    """Build the fake server; its `FakeState` is at `fake_state(app)` (also `app.state.fake`)."""
    settings = settings or FakeSettings()
    state = FakeState(script=script or Script(), max_records=settings.max_records)

    async def chat_completions(request: Request) -> Response:
        seq = state.next_seq()
        raw = b""
        chat: ChatRequest | None = None
        rule: Rule | None = None
        try:
            raw = await _read_body(request, settings.max_body_bytes)
            chat = parse_chat_request(raw, default_model=settings.models[0])
            rule = state.choose(chat)
            response = _rule_response(state, settings, chat, rule, seq)
        except RequestError as exc:
            response = _error(exc.status, exc.message, code=exc.code, param=exc.param)
        except ClientDisconnect:
            # Gone before the body arrived: nothing to answer and nothing worth recording.
            return Response(status_code=400)
        body: Any = chat.body if chat is not None else _loose_json(raw)
        state.record_request(
            RecordedRequest(
                seq=seq,
                time=time.time(),
                method=request.method,
                path=request.url.path,
                headers=public_headers(request.scope["headers"]),
                body=body,
                rule=None if rule is None else _rule_label(state, rule),
            )
        )
        return response

    async def embeddings(request: Request) -> Response:
        # deterministic vectors (embeddings.py); recorded like chat requests, never scripted
        seq = state.next_seq()
        raw = b""
        try:
            raw = await _read_body(request, settings.max_body_bytes)
            response: Response = JSONResponse(
                embeddings_response(_loose_json(raw), settings.models[0])
            )
        except RequestError as exc:
            response = _error(exc.status, exc.message, code=exc.code, param=exc.param)
        except ClientDisconnect:
            return Response(status_code=400)
        state.record_request(
            RecordedRequest(
                seq=seq,
                time=time.time(),
                method=request.method,
                path=request.url.path,
                headers=public_headers(request.scope["headers"]),
                body=_loose_json(raw),
                rule=None,
            )
        )
        return response

    async def models(_: Request) -> Response:
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {"id": m, "object": "model", "created": 0, "owned_by": "fake-openai"}
                    for m in settings.models
                ],
            }
        )

    async def get_requests(_: Request) -> Response:
        return Response(
            dumps(
                {"requests": [r.to_json() for r in state.requests], "total": state.request_count}
            ),
            media_type="application/json",
        )

    async def get_disconnects(_: Request) -> Response:
        return Response(
            dumps(
                {
                    "disconnects": [d.to_json() for d in state.disconnects],
                    "total": state.disconnect_count,
                }
            ),
            media_type="application/json",
        )

    async def put_script(request: Request) -> Response:
        try:
            raw = await _read_body(request, settings.max_body_bytes)
            new = parse_script(json.loads(raw))
        except RequestError as exc:
            return _error(exc.status, exc.message)
        except ValueError as exc:  # ScriptError and JSONDecodeError are both ValueErrors
            return _error(400, f"Invalid script: {exc}", code="invalid_script")
        state.set_script(new)
        return JSONResponse({"rules": len(new.rules)})

    async def reset(_: Request) -> Response:
        state.reset()
        return JSONResponse({"reset": True})

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/embeddings", embeddings, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/_fake/requests", get_requests, methods=["GET"]),
            Route("/_fake/disconnects", get_disconnects, methods=["GET"]),
            Route("/_fake/script", put_script, methods=["POST"]),
            Route("/_fake/reset", reset, methods=["POST"]),
        ],
    )
    app.state.fake = state
    return app


def _rule_label(state: FakeState, rule: Rule) -> str:
    """The rule's name, else `rule#<index>`, else `default` for the fallback."""
    if rule.name:
        return rule.name
    for i, candidate in enumerate(state.script.rules):
        if candidate is rule:
            return f"rule#{i}"
    return "default"


def _loose_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None
