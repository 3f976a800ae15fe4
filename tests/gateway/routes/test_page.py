"""The chat page route: `/` and `/static/{version}/…`: headers, CSP, caching, 404s, loading."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict
from support.gateway_harness import FakeUpstream, Gateway, gateway_settings, running_gateway

from gateway.routes.page import (
    CONTENT_SECURITY_POLICY,
    STATIC_ROOT,
    PageAssets,
    load_assets,
)
from gateway.settings import GatewaySettings


async def fetch(
    method: str, url: str, headers: dict[str, str] | None = None
) -> tuple[int, CIMultiDict[str], bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, headers=headers, allow_redirects=False) as resp,
    ):
        return resp.status, CIMultiDict(resp.headers), await resp.read()


def asset_base(html: str) -> str:
    found = re.search(r'src="(/static/[0-9a-f]{12})/js/main\.js"', html)
    assert found is not None, "the page loads its script from the versioned prefix"
    return found.group(1)


async def test_the_page_is_html_with_a_strict_csp_and_security_headers(
    upstream: FakeUpstream,
) -> None:
    async with running_gateway(gateway_settings(upstream.url)) as gw:
        status, headers, body = await fetch("GET", f"{gw.url}/")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    csp = headers["Content-Security-Policy"]
    directives = {part.split()[0]: part.split()[1:] for part in csp.split("; ")}
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"], "no inline or eval'd scripts"
    assert directives["connect-src"] == ["'self'"], "fetch and the WebSocket: this origin only"
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]
    assert directives["require-trusted-types-for"] == ["'script'"]
    assert not any("unsafe" in value for values in directives.values() for value in values)
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Cache-Control"] == "no-cache"
    assert headers["ETag"].startswith('"')
    html = body.decode()
    assert "{{" not in html, "the asset marker was replaced"
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "no inline script"
    assert "<style" not in html and " style=" not in html, "no inline style"
    assert not re.search(r"\son[a-z]+=", html), "no inline event handlers"


async def test_every_asset_the_page_and_its_modules_name_is_served_immutable(
    upstream: FakeUpstream,
) -> None:
    async with running_gateway(gateway_settings(upstream.url)) as gw:
        _, _, body = await fetch("GET", f"{gw.url}/")
        html = body.decode()
        base = asset_base(html)
        named = set(re.findall(r'(?:src|href)="(/static/[^"]+)"', html))
        for script in STATIC_ROOT.glob("js/*.js"):
            for module in re.findall(r'from "\./([\w-]+\.js)"', script.read_text()):
                named.add(f"{base}/js/{module}")
        assert {f"{base}/js/main.js", f"{base}/css/chat.css", f"{base}/img/icon.svg"} <= named
        for path in sorted(named):
            status, headers, content = await fetch("GET", gw.url + path)
            assert status == 200, path
            assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
            assert content
            expected = {
                ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8",
                ".svg": "image/svg+xml",
            }[Path(path).suffix]
            assert headers["Content-Type"] == expected, path


async def test_a_known_etag_is_answered_304_without_a_body(upstream: FakeUpstream) -> None:
    async with running_gateway(gateway_settings(upstream.url)) as gw:
        _, headers, body = await fetch("GET", f"{gw.url}/")
        etag = headers["ETag"]
        status, again, content = await fetch("GET", f"{gw.url}/", {"If-None-Match": etag})
        assert (status, content) == (304, b"")
        assert again["ETag"] == etag
        css = f"{asset_base(body.decode())}/css/chat.css"
        _, css_headers, _ = await fetch("GET", gw.url + css)
        weak = f"W/{css_headers['ETag']}"
        status, _, _ = await fetch("GET", gw.url + css, {"If-None-Match": f'"other", {weak}'})
        assert status == 304
        status, _, _ = await fetch("GET", gw.url + css, {"If-None-Match": '"stale"'})
        assert status == 200


async def test_head_answers_headers_only(upstream: FakeUpstream) -> None:
    async with running_gateway(gateway_settings(upstream.url)) as gw:
        status, headers, body = await fetch("HEAD", f"{gw.url}/")
    assert status == 200
    assert body == b""
    assert headers["Content-Type"] == "text/html; charset=utf-8"


async def _base(gw: Gateway) -> str:
    _, _, body = await fetch("GET", f"{gw.url}/")
    return asset_base(body.decode())


@pytest.mark.parametrize(
    "suffix",
    [
        "/js/nope.js",
        "/../routes/page.py",
        "/%2e%2e/routes/page.py",
        "/..%2fapp.py",
        "//etc/passwd",
        "/index.html",  # the page lives at / only (its marker is not replaced here)
        "/js/",
    ],
)
async def test_unknown_or_escaping_asset_paths_are_json_404s(
    upstream: FakeUpstream, suffix: str
) -> None:
    async with running_gateway(gateway_settings(upstream.url)) as gw:
        base = await _base(gw)
        status, headers, body = await fetch("GET", gw.url + base + suffix)
    assert status == 404, suffix
    assert headers["Content-Type"].startswith("application/json")
    assert b'"code":"NOT_FOUND"' in body
    assert b"import" not in body, "never a source file"


async def test_assets_outside_a_version_prefix_are_404(upstream: FakeUpstream) -> None:
    async with running_gateway(gateway_settings(upstream.url)) as gw:
        status, _, _ = await fetch("GET", f"{gw.url}/static/js/main.js")
    assert status == 404


async def test_another_versions_asset_is_served_but_not_kept(upstream: FakeUpstream) -> None:
    """A page from a replica on another version still loads (mid-deploy), uncached."""
    async with running_gateway(gateway_settings(upstream.url)) as gw:
        status, headers, _ = await fetch("GET", f"{gw.url}/static/0123456789ab/js/main.js")
    assert status == 200
    assert headers["Cache-Control"] == "no-cache"


async def test_the_page_refuses_other_methods(upstream: FakeUpstream) -> None:
    async with running_gateway(gateway_settings(upstream.url)) as gw:
        status, headers, body = await fetch("POST", f"{gw.url}/")
    assert status == 405
    assert b'"code":"METHOD_NOT_ALLOWED"' in body
    assert "GET" in headers["Allow"]


# --- loading the assets -------------------------------------------------------------------------


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


PAGE = '<script type="module" src="{{ASSET_BASE}}/js/main.js"></script>'


def test_only_known_file_types_are_served(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "index.html": PAGE,
            "js/main.js": "export {};",
            "js/main.js.map": "{}",
            "notes.md": "private",
            "server.py": "SECRET = 1",
            ".env": "KEY=1",
        },
    )
    assets = load_assets(tmp_path)
    assert set(assets.files) == {"js/main.js"}
    assert assets.index.body.decode().startswith(f'<script type="module" src="{assets.base}/')


def test_the_version_follows_the_contents(tmp_path: Path) -> None:
    write(tmp_path, {"index.html": PAGE, "js/main.js": "export const a = 1;"})
    first = load_assets(tmp_path)
    assert load_assets(tmp_path).version == first.version
    write(tmp_path, {"js/main.js": "export const a = 2;"})
    assert load_assets(tmp_path).version != first.version


@pytest.mark.parametrize(
    ("files", "says"),
    [
        ({}, "missing"),
        ({"index.html": "<p>no marker</p>"}, "ASSET_BASE"),
        ({"index.html": PAGE, "img/huge.png": b"\0" * (2 * 1024 * 1024 + 1)}, "over"),
    ],
)
def test_unusable_asset_directories_are_refused_at_start(
    tmp_path: Path, files: dict[str, Any], says: str
) -> None:
    write(tmp_path, files)
    with pytest.raises(ValueError, match=says):
        load_assets(tmp_path)


def test_the_shipped_assets_load() -> None:
    assets = load_assets()
    assert isinstance(assets, PageAssets)
    assert {"js/main.js", "css/chat.css", "img/icon.svg"} <= set(assets.files)


def test_the_scripts_never_turn_text_into_markup() -> None:
    """The page renders everything with textContent; none of the HTML-parsing sinks appear."""
    sinks = re.compile(
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function"
        r"|createContextualFragment|DOMParser|srcdoc"
    )
    for script in STATIC_ROOT.rglob("*.js"):
        found = sinks.findall(script.read_text())
        assert found == [], f"{script.name} uses {found}"


async def test_production_serves_the_page_without_the_dev_sign_in(upstream: FakeUpstream) -> None:
    """Outside development the page is the same; it falls back to a pasted token."""
    settings = GatewaySettings(
        env="production",
        agent_url=upstream.url,
        internal_key="p" * 40,
        jwt_hs256_secret="s" * 40,
    )
    async with running_gateway(settings) as gw:
        status, headers, _ = await fetch("GET", f"{gw.url}/")
        dev_status, _, _ = await fetch("GET", f"{gw.url}/auth/dev-users")
    assert status == 200
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert dev_status == 404
