"""`POST /v1/chat/completions` and `GET /v1/models`: the assistant as an OpenAI-compatible model,
for the OpenAI SDKs and any tool that takes a base URL (the API key is the user's JWT)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from gateway.admission import admit_request, authenticate
from gateway.app_state import REQUEST_ID, SETTINGS
from gateway.errors import GatewayError, NotFound
from gateway.openai_chat import (
    CONVERSATION_HEADER,
    ChatCompletionRequest,
    ChunkState,
    StreamItem,
    chunk_frame,
    completion,
    conversation_id_of,
    gateway_error_body,
    model_list,
    new_completion_id,
    opening_chunks,
    question_of,
    to_chunks,
)
from gateway.request_body import read_json
from gateway.routes.complete import complete_run
from gateway.runs import chat_request, refuse_if_closing
from gateway.streaming import FramedSink, serve_stream

DONE: Final = b"data: [DONE]\n\n"
STREAM_HEADERS: Final = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "Connection": "keep-alive",
    "X-Accel-Buffering": "no",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def openai_errors(handler: Handler) -> Handler:
    """Render the handler's refusals in OpenAI's error shape (status and headers kept)."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except GatewayError as error:
            return web.json_response(
                gateway_error_body(error, request.get(REQUEST_ID)),
                status=error.status,
                headers=error.headers,
            )

    wrapped.__doc__ = handler.__doc__
    return wrapped


def chunk_sink(
    request: web.Request, response: web.StreamResponse, state: ChunkState
) -> FramedSink[ChunkState, StreamItem]:
    """The sink of this stream: to_chunks over `response`, one `chunk_frame` per item."""
    return FramedSink(request, response, state, to_chunks, opening_chunks(state), chunk_frame)


@openai_errors
async def chat_completions(request: web.Request) -> web.StreamResponse:
    """Run one turn: a `chat.completion`, or with `stream` its chunks and `[DONE]`."""
    started = time.monotonic()
    app = request.app
    settings = app[SETTINGS]
    refuse_if_closing(app)
    principal = await authenticate(request)
    await admit_request(request, principal)
    body = await read_json(
        request, ChatCompletionRequest, max_bytes=settings.transcript_max_body_bytes
    )
    if body.model != settings.openai_model:
        raise NotFound(f"The model '{body.model}' does not exist; GET /v1/models lists it.")
    conversation_id = conversation_id_of(body, request.headers.get(CONVERSATION_HEADER))
    chat = chat_request(principal, question_of(body), conversation_id)
    headers = {CONVERSATION_HEADER: conversation_id}
    if not body.stream:
        answer, limit_headers = await complete_run(request, principal, chat)
        payload = completion(
            answer.answer,
            answer.stats,
            model=body.model,
            completion_id=new_completion_id(),
            conversation_id=conversation_id,
        )
        return web.json_response(payload, headers={**headers, **limit_headers})
    state = ChunkState(
        completion_id=new_completion_id(),
        model=body.model,
        conversation_id=conversation_id,
        include_usage=bool(body.stream_options and body.stream_options.include_usage),
    )
    return await serve_stream(
        request,
        principal,
        chat,
        lambda response: chunk_sink(request, response, state),
        transport="openai",
        headers={**STREAM_HEADERS, **headers},
        started=started,
        closing=DONE,
    )


@openai_errors
async def list_models(request: web.Request) -> web.Response:
    """`GET /v1/models`: the one model this gateway answers as."""
    await authenticate(request)
    return web.json_response(model_list(request.app[SETTINGS].openai_model))
