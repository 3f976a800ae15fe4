"""The interactive API docs page both tiers serve at `/docs`: Swagger UI from assets the tier
serves itself (the `swagger-ui-py` package's files), never from a CDN."""

from __future__ import annotations

import json
from typing import Final

SWAGGER_ASSETS: Final = frozenset(
    {
        "swagger-ui.css",
        "index.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "favicon-32x32.png",
        "favicon-16x16.png",
    }
)
"""The files of `swagger_ui/static` the page loads; nothing else there is served."""
DOCS_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self' data:; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'none'"
)
"""Swagger UI sets inline styles; its scripts, like everything else, come from this origin."""


def docs_page(title: str, assets: str = "/docs/assets") -> str:
    """The HTML of `/docs` (`assets`: where the Swagger UI files and `init.js` are served)."""
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title}</title>
  <link rel="stylesheet" href="{assets}/swagger-ui.css">
  <link rel="stylesheet" href="{assets}/index.css">
  <link rel="icon" type="image/png" href="{assets}/favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{assets}/swagger-ui-bundle.js"></script>
  <script src="{assets}/swagger-ui-standalone-preset.js"></script>
  <script src="{assets}/init.js"></script>
</body>
</html>
"""


def docs_initializer(openapi_url: str = "/openapi.json") -> str:
    """`init.js`: starts Swagger UI on the tier's own OpenAPI document."""
    return f"""window.onload = function () {{
  window.ui = SwaggerUIBundle({{
    url: {json.dumps(openapi_url)},
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout",
    validatorUrl: null,
  }});
}};
"""
