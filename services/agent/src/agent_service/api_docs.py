"""The interactive docs at `/docs`: Swagger UI on `/openapi.json`, its files served from the
`swagger-ui-py` package (no CDN). Routed only when `AGENT_API_DOCS` allows it."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Final

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

from agent_service.errors import NotFound
from contracts.api_docs import DOCS_CSP, SWAGGER_ASSETS, docs_initializer, docs_page

ASSETS_DIR: Final = Path(str(files("swagger_ui").joinpath("static")))
_CACHE: Final = {"Cache-Control": "public, max-age=3600"}


async def docs(_: Request) -> Response:
    """`GET /docs`: Swagger UI on the internal API's OpenAPI document."""
    return HTMLResponse(
        docs_page("Agent service (internal API)"), headers={"Content-Security-Policy": DOCS_CSP}
    )


async def docs_asset(request: Request) -> Response:
    """`GET /docs/assets/{name}`: one of Swagger UI's files, or its start script."""
    name = request.path_params["name"]
    if name == "init.js":
        return Response(
            docs_initializer("/openapi.json"), media_type="application/javascript", headers=_CACHE
        )
    if name not in SWAGGER_ASSETS:
        raise NotFound("no such file")
    return FileResponse(ASSETS_DIR / name, headers=_CACHE)


DOCS_ROUTES: Final = [
    Route("/docs", docs, methods=["GET"]),
    Route("/docs/assets/{name}", docs_asset, methods=["GET"]),
]
