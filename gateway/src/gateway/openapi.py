"""The OpenAPI 3.1 document of the public API, assembled from the models the routes read and
write (a test keeps it and the router in step)."""

from __future__ import annotations

from functools import cache
from typing import Any, Final, Literal

from ag_ui.core import Event as AguiEvent
from ag_ui.core import RunAgentInput
from pydantic import TypeAdapter

from contracts.agent_api import ConversationHistory, ConversationList
from contracts.errors import ErrorBody
from contracts.ui_events import UiEvent
from gateway.openai_chat import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ModelList,
    OpenAIErrorBody,
)
from gateway.request_body import ChatStreamBody
from gateway.routes.ai_sdk import UseChatBody
from gateway.routes.complete import CompleteAnswer
from gateway.routes.dev_auth import DevTokenRequest

_REF: Final = "#/components/schemas/{model}"
SCHEMAS: Final[dict[str, tuple[Any, Literal["validation", "serialization"]]]] = {
    "ChatStreamBody": (ChatStreamBody, "validation"),
    "UseChatBody": (UseChatBody, "validation"),
    "RunAgentInput": (RunAgentInput, "validation"),
    "ChatCompletionRequest": (ChatCompletionRequest, "validation"),
    "DevTokenRequest": (DevTokenRequest, "validation"),
    "UiEvent": (UiEvent, "serialization"),
    "AguiEvent": (AguiEvent, "serialization"),
    "CompleteAnswer": (CompleteAnswer, "serialization"),
    "ConversationList": (ConversationList, "serialization"),
    "ConversationHistory": (ConversationHistory, "serialization"),
    "ErrorBody": (ErrorBody, "serialization"),
    "ChatCompletion": (ChatCompletion, "serialization"),
    "ChatCompletionChunk": (ChatCompletionChunk, "serialization"),
    "ModelList": (ModelList, "serialization"),
    "OpenAIErrorBody": (OpenAIErrorBody, "serialization"),
}
"""Every named schema, and whether it is read (validation) or written (serialization)."""


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def _schemas() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (model, mode) in SCHEMAS.items():
        schema = TypeAdapter(model).json_schema(ref_template=_REF, mode=mode)
        for def_name, definition in schema.pop("$defs", {}).items():
            if out.setdefault(def_name, definition) != definition:
                raise ValueError(f"two different schemas are named {def_name}")
        out[name] = schema
    return out


def _json(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(name)}}


def _sse(name: str, what: str) -> dict[str, Any]:
    return {"description": what, "content": {"text/event-stream": {"schema": _ref(name)}}}


def _errors(*statuses: int, body: str = "ErrorBody") -> dict[str, Any]:
    return {
        str(s): {"description": "refused; `error.code` says why", "content": _json(body)}
        for s in statuses
    }


RUN_ERRORS: Final = (400, 401, 409, 413, 415, 429, 502, 503)
"""What a chat route may answer instead of its stream: the request, the token, the limits, the
agent."""


def _operation(
    summary: str,
    responses: dict[str, Any],
    *,
    body: str | None = None,
    secured: bool = True,
    tag: str,
    params: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses}
    if secured:
        op["security"] = [{"bearer": []}]
    if body is not None:
        op["requestBody"] = {"required": True, "content": _json(body)}
    if params:
        op["parameters"] = params
    return op


def _path_param(name: str) -> list[dict[str, Any]]:
    return [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}]


def _paths() -> dict[str, Any]:
    conv = _path_param("conversation_id")
    return {
        "/api/chat/stream": {
            "post": _operation(
                "Ask; stream the answer as the gateway's UI events (SSE)",
                {"200": _sse("UiEvent", "one UiEvent per frame"), **_errors(*RUN_ERRORS)},
                body="ChatStreamBody",
                tag="chat",
            )
        },
        "/api/chat/complete": {
            "post": _operation(
                "Ask; answer when the run is done",
                {
                    "200": {"description": "the answer", "content": _json("CompleteAnswer")},
                    **_errors(*RUN_ERRORS),
                },
                body="ChatStreamBody",
                tag="chat",
            )
        },
        "/api/chat": {
            "post": _operation(
                "Vercel AI SDK `useChat`: the UI Message Stream v1",
                {
                    "200": {
                        "description": "UI Message Stream parts, `data: [DONE]` last",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    **_errors(*RUN_ERRORS),
                },
                body="UseChatBody",
                tag="chat",
            )
        },
        "/api/chat/{chat_id}/stream": {
            "get": _operation(
                "AI SDK resume (`useChat({resume: true})`): the chat's run in progress, from its"
                " start",
                {
                    "200": {"description": "UI Message Stream v1 parts, then `data: [DONE]`"},
                    "204": {"description": "no run of this chat in progress"},
                    **_errors(401, 429),
                },
                tag="chat",
                params=_path_param("chat_id"),
            )
        },
        "/api/chat/runs/{run_id}/stream": {
            "get": _operation(
                "Resume a run's UI events after `Last-Event-ID` (the run id is the `message_id`"
                " of its `start` event)",
                {
                    "200": _sse("UiEvent", "the rest of the run's UI events"),
                    **_errors(400, 401, 404, 429),
                },
                tag="chat",
                params=_path_param("run_id"),
            )
        },
        "/api/chat/runs/{run_id}/stop": {
            "post": _operation(
                "Stop a run on any replica; its partial answer is saved, marked stopped",
                {
                    "202": {"description": "the run was running and is being stopped"},
                    "204": {"description": "the run had already ended"},
                    **_errors(401, 404),
                },
                tag="chat",
                params=_path_param("run_id"),
            )
        },
        "/api/agui": {
            "post": _operation(
                "AG-UI agent endpoint (`HttpAgent`); the thread id is the conversation id",
                {"200": _sse("AguiEvent", "AG-UI events"), **_errors(*RUN_ERRORS)},
                body="RunAgentInput",
                tag="AG-UI",
            )
        },
        "/v1/chat/completions": {
            "post": _operation(
                "OpenAI-compatible chat completion (streamed with `stream: true`)",
                {
                    "200": {
                        "description": "a completion, or its chunks then `data: [DONE]`",
                        "content": {
                            **_json("ChatCompletion"),
                            "text/event-stream": {"schema": _ref("ChatCompletionChunk")},
                        },
                    },
                    **_errors(*RUN_ERRORS, 404, body="OpenAIErrorBody"),
                },
                body="ChatCompletionRequest",
                tag="OpenAI-compatible",
            )
        },
        "/v1/models": {
            "get": _operation(
                "The one model this gateway answers as",
                {
                    "200": {"description": "models", "content": _json("ModelList")},
                    **_errors(401, body="OpenAIErrorBody"),
                },
                tag="OpenAI-compatible",
            )
        },
        "/api/conversations": {
            "get": _operation(
                "The caller's conversations, newest first",
                {
                    "200": {"description": "list", "content": _json("ConversationList")},
                    **_errors(401, 429),
                },
                tag="conversations",
            )
        },
        "/api/conversations/{conversation_id}": {
            "get": _operation(
                "One conversation's messages",
                {
                    "200": {"description": "history", "content": _json("ConversationHistory")},
                    **_errors(401, 404, 429),
                },
                tag="conversations",
                params=conv,
            ),
            "delete": _operation(
                "Forget a conversation",
                {"204": {"description": "deleted"}, **_errors(401, 404, 409, 429)},
                tag="conversations",
                params=conv,
            ),
        },
        "/ws/chat": {
            "get": _operation(
                "WebSocket chat (upgrade); messages in docs/public-api.md",
                {"101": {"description": "switching protocols"}},
                secured=False,
                tag="chat",
            )
        },
        "/": {
            "get": _operation(
                "The chat page", {"200": {"description": "HTML"}}, secured=False, tag="page"
            )
        },
        "/static/{version}/{path}": {
            "get": _operation(
                "The chat page's assets",
                {"200": {"description": "a file"}, "404": {"description": "no such file"}},
                secured=False,
                tag="page",
                params=[*_path_param("version"), *_path_param("path")],
            )
        },
        "/auth/dev-users": {
            "get": _operation(
                "Demo users (development only)",
                {"200": {"description": "users"}},
                secured=False,
                tag="development",
            )
        },
        "/auth/dev-token": {
            "post": _operation(
                "A token for a demo user (development only)",
                {"200": {"description": "token"}, **_errors(400, 403)},
                body="DevTokenRequest",
                secured=False,
                tag="development",
            )
        },
        **{
            path: {
                "get": _operation(
                    "Liveness", {"200": {"description": "alive"}}, secured=False, tag="operations"
                )
            }
            for path in ("/health", "/healthz")
        },
        **{
            path: {
                "get": _operation(
                    "Readiness (the agent answers)",
                    {"200": {"description": "ready"}, "503": {"description": "not ready"}},
                    secured=False,
                    tag="operations",
                )
            }
            for path in ("/ready", "/readyz")
        },
        "/metrics": {
            "get": _operation(
                "Prometheus metrics (Bearer GATEWAY_METRICS_TOKEN; development only without one)",
                {"200": {"description": "text"}, "401": {"description": "no metrics token"}},
                secured=False,
                tag="operations",
            )
        },
    }


@cache
def openapi_document() -> dict[str, Any]:
    """Built once per process: the models never change at run time."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Agent chat gateway (public API)",
            "version": "1",
            "description": "Every chat surface of the gateway; docs/public-api.md has examples. "
            "Authenticate with `Authorization: Bearer <JWT>` (for the OpenAI-compatible "
            "routes, the JWT is the API key).",
        },
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
        "paths": _paths(),
    }
