"""The OpenAPI 3.1 document of the internal API, assembled from the contract's models."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic.json_schema import models_json_schema

from contracts.agent_api import (
    AGENT_EVENT_ADAPTER,
    ChatRequest,
    ChatResponse,
    ConversationHistory,
    ConversationList,
)
from contracts.errors import ErrorBody

_REF = "#/components/schemas/{model}"


def _json(schema_name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _REF.format(model=schema_name)}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {
        str(s): {"description": "refused; see the error code", "content": _json("ErrorBody")}
        for s in statuses
    }


@cache
def openapi_document() -> dict[str, Any]:
    """Built once per process: the models never change at run time."""
    _, defs = models_json_schema(
        [
            (ChatRequest, "validation"),
            (ChatResponse, "serialization"),
            (ConversationList, "serialization"),
            (ConversationHistory, "serialization"),
            (ErrorBody, "serialization"),
        ],
        ref_template=_REF,
    )
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    event_schema = AGENT_EVENT_ADAPTER.json_schema(ref_template=_REF)
    schemas.update(event_schema.pop("$defs", {}))
    schemas["AgentEvent"] = event_schema
    bearer: list[dict[str, list[str]]] = [{"internalToken": []}]
    conv_param = [
        {"name": "conversation_id", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Agent service (internal API)",
            "version": "1",
            "description": "Private tier. Every /internal route needs a short-lived "
            "internal token; "
            "see docs/internal-api.md.",
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "internalToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
        "paths": {
            "/internal/chat/stream": {
                "post": {
                    "summary": "Run the workflow and stream semantic events (SSE)",
                    "security": bearer,
                    "requestBody": {"required": True, "content": _json("ChatRequest")},
                    "responses": {
                        "200": {
                            "description": "text/event-stream of AgentEvent frames "
                            "(id, event, data); "
                            "exactly one terminal complete or error",
                            "content": {
                                "text/event-stream": {
                                    "schema": {"$ref": _REF.format(model="AgentEvent")}
                                }
                            },
                        },
                        **_errors(400, 401, 403, 409, 413, 415),
                    },
                }
            },
            "/internal/chat": {
                "post": {
                    "summary": "Run the workflow to completion",
                    "security": bearer,
                    "requestBody": {"required": True, "content": _json("ChatRequest")},
                    "responses": {
                        "200": {"description": "the answer", "content": _json("ChatResponse")},
                        **_errors(400, 401, 403, 409, 413, 415, 502, 504),
                    },
                }
            },
            "/internal/conversations": {
                "get": {
                    "summary": "The caller's conversations, newest first",
                    "security": bearer,
                    "responses": {
                        "200": {"description": "list", "content": _json("ConversationList")},
                        **_errors(401),
                    },
                }
            },
            "/internal/conversations/{conversation_id}": {
                "get": {
                    "summary": "A conversation's messages",
                    "security": bearer,
                    "parameters": conv_param,
                    "responses": {
                        "200": {"description": "history", "content": _json("ConversationHistory")},
                        **_errors(401, 404),
                    },
                },
                "delete": {
                    "summary": "Delete a conversation and its memory",
                    "security": bearer,
                    "parameters": conv_param,
                    "responses": {"204": {"description": "deleted"}, **_errors(401, 404, 409)},
                },
            },
            "/health": {
                "get": {"summary": "Liveness", "responses": {"200": {"description": "alive"}}}
            },
            "/ready": {
                "get": {"summary": "Readiness", "responses": {"200": {"description": "ready"}}}
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {"200": {"description": "text"}},
                }
            },
        },
    }
