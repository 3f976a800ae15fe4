"""The chat page: `GET /` and its static assets, served with a strict Content-Security-Policy.

The assets (HTML, CSS, JS modules, an icon) are read once when the app is built and served from
memory. They live under a versioned prefix, `/static/<version>/…`, where the version is a hash of
their contents: the page (`no-cache`, revalidated by ETag) names the current version, so the assets
themselves can be cached for a year as immutable, and a new deploy is picked up on the next load.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final

from aiohttp import web

STATIC_ROOT: Final = Path(__file__).resolve().parent.parent / "static"
INDEX_FILE: Final = "index.html"
ASSET_BASE_MARKER: Final = "{{ASSET_BASE}}"
"""Written in index.html where the versioned asset prefix goes."""
MAX_ASSET_BYTES: Final = 2 * 1024 * 1024
"""A bigger file under static/ is a mistake (a build output, a video): refuse to start."""

CONTENT_TYPES: Final[Mapping[str, str]] = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".webmanifest": "application/manifest+json",
}
"""Only these files are served; anything else under static/ stays private."""

CONTENT_SECURITY_POLICY: Final = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        # 'self' covers ws:/wss: to this same host and port (CSP level 3).
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        # Assigning a string to innerHTML (or eval-like sinks) throws: data can never become markup.
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    ]
)
SECURITY_HEADERS: Final[Mapping[str, str]] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
IMMUTABLE: Final = "public, max-age=31536000, immutable"
REVALIDATE: Final = "no-cache"


@dataclass(frozen=True, slots=True)
class Asset:
    """One servable file: its bytes, content type and strong ETag."""

    body: bytes
    content_type: str
    etag: str


@dataclass(frozen=True, slots=True)
class PageAssets:
    """The page and its assets as served: `files` maps a relative POSIX path to its asset."""

    version: str
    index: Asset
    files: Mapping[str, Asset]

    @property
    def base(self) -> str:
        """The URL prefix of this version's assets."""
        return f"/static/{self.version}"


PAGE_ASSETS: Final = web.AppKey("page_assets", PageAssets)


def _asset(body: bytes, content_type: str) -> Asset:
    return Asset(body, content_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


def load_assets(root: Path = STATIC_ROOT) -> PageAssets:
    """Read the page and every servable file under `root`; raises ValueError when unusable."""
    index_path = root / INDEX_FILE
    if not index_path.is_file():
        raise ValueError(f"the chat page is missing: {index_path}")
    raw: dict[str, tuple[bytes, str]] = {}
    for path in sorted(root.rglob("*")):
        content_type = CONTENT_TYPES.get(path.suffix)
        if not path.is_file() or content_type is None or path == index_path:
            continue
        if path.stat().st_size > MAX_ASSET_BYTES:
            raise ValueError(f"{path} is over {MAX_ASSET_BYTES} bytes; not a page asset")
        raw[path.relative_to(root).as_posix()] = (path.read_bytes(), content_type)
    digest = hashlib.sha256()
    for name, (body, _) in raw.items():
        digest.update(name.encode() + b"\0" + hashlib.sha256(body).digest())
    version = digest.hexdigest()[:12]
    html = index_path.read_text(encoding="utf-8")
    if ASSET_BASE_MARKER not in html:
        raise ValueError(f"{index_path} does not use {ASSET_BASE_MARKER}")
    index = html.replace(ASSET_BASE_MARKER, f"/static/{version}").encode()
    files = {name: _asset(body, content_type) for name, (body, content_type) in raw.items()}
    return PageAssets(version, _asset(index, CONTENT_TYPES[".html"]), files)


def _respond(request: web.Request, asset: Asset, cache_control: str) -> web.Response:
    headers = {**SECURITY_HEADERS, "Cache-Control": cache_control, "ETag": asset.etag}
    if asset.etag in _etags(request.headers.get("If-None-Match")):
        return web.Response(status=304, headers=headers)
    response = web.Response(body=asset.body, headers=headers)
    response.content_type, _, charset = asset.content_type.partition("; charset=")
    if charset:
        response.charset = charset
    return response


def _etags(header: str | None) -> set[str]:
    if not header:
        return set()
    # Weak validators match for GET (RFC 9110 §13.1.2): compare the opaque tag only.
    return {part.strip().removeprefix("W/") for part in header.split(",")}


async def chat_page(request: web.Request) -> web.Response:
    """`GET /`: the chat page (revalidated on every load, so a deploy shows at once)."""
    return _respond(request, request.app[PAGE_ASSETS].index, REVALIDATE)


async def static_asset(request: web.Request) -> web.Response:
    """`GET /static/{version}/{path}`: an asset; immutable when `version` is the current one."""
    assets = request.app[PAGE_ASSETS]
    name = request.match_info["path"]
    # Names are keys of a dict built from the directory: '..' or absolute paths never match one.
    asset = assets.files.get(PurePosixPath(name).as_posix()) if name else None
    if asset is None:
        raise web.HTTPNotFound(reason="No such file.")
    # A page from another version (a replica mid-deploy) gets today's file, but must not keep it.
    current = request.match_info["version"] == assets.version
    return _respond(request, asset, IMMUTABLE if current else REVALIDATE)


def add_page_routes(app: web.Application, root: Path = STATIC_ROOT) -> None:
    """Load the assets and route `/` and `/static/{version}/{path}` to them."""
    app[PAGE_ASSETS] = load_assets(root)
    app.router.add_get("/", chat_page)
    app.router.add_get("/static/{version}/{path:.+}", static_asset)
