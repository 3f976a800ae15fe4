"""`/openapi.json` and the interactive docs at `/docs` (Swagger UI, its files served from the
`swagger-ui-py` package: no CDN). Routed only when `GATEWAY_API_DOCS` allows it."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Final

from aiohttp import web

from contracts.api_docs import DOCS_CSP, SWAGGER_ASSETS, docs_initializer, docs_page
from gateway.errors import NotFound
from gateway.openapi import openapi_document

ASSETS_DIR: Final = Path(str(files("swagger_ui").joinpath("static")))
_CACHE: Final = {"Cache-Control": "public, max-age=3600"}


@cache
def _document_bytes() -> bytes:
    return json.dumps(openapi_document(), separators=(",", ":")).encode()


async def openapi_json(_: web.Request) -> web.Response:
    """`GET /openapi.json`: the OpenAPI 3.1 document of every public route."""
    return web.Response(body=_document_bytes(), content_type="application/json")


async def docs(_: web.Request) -> web.Response:
    """`GET /docs`: Swagger UI on `/openapi.json`."""
    return web.Response(
        text=docs_page("Agent chat gateway API"),
        content_type="text/html",
        headers={"Content-Security-Policy": DOCS_CSP},
    )


async def docs_asset(request: web.Request) -> web.StreamResponse:
    """`GET /docs/assets/{name}`: one of Swagger UI's files, or its start script."""
    name = request.match_info["name"]
    if name == "init.js":
        return web.Response(
            text=docs_initializer("/openapi.json"),
            content_type="application/javascript",
            headers=_CACHE,
        )
    if name not in SWAGGER_ASSETS:
        raise NotFound("No such file.")
    return web.FileResponse(ASSETS_DIR / name, headers=_CACHE)


def add_api_docs_routes(app: web.Application) -> None:
    """Route `/openapi.json`, `/docs` and its assets."""
    app.router.add_get("/openapi.json", openapi_json)
    app.router.add_get("/docs", docs)
    app.router.add_get("/docs/assets/{name}", docs_asset)
