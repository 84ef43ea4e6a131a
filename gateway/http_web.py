"""The web pages the gateway serves: customer widget, demo host page, console, admin.

Everything under ``gateway/web/`` is read once at start-up and served from memory with
an ETag. Two bundles are built at start-up:

* ``/widget.js`` — tweetnacl (``nacl-fast.min.js`` from npm, pinned in
  ``package-lock.json``) + ``protocol.js`` + ``ui.js`` + ``widget.js``, wrapped in one
  function scope so nothing leaks into the host page's globals. Being ONE file, one
  Subresource Integrity hash (``sha384``) covers the crypto library and the widget; the
  hash of ``widget.css`` is baked into the bundle, so the stylesheet is pinned too.
* ``/static/core.js`` — tweetnacl + ``protocol.js`` + ``ui.js`` for the console pages.

The embed snippet (``embed_snippet``) carries ``data-tenant``, ``data-gateway-key`` (the
gateway's Ed25519 verify key, which the widget pins) and ``integrity``. Pages contain no
inline script or style: the strict CSP set by :mod:`gateway.http_public` applies as is.
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from gateway.services import SERVICES, Services
from gateway.tenants import DEMO_TENANT

WEB_DIR = Path(__file__).resolve().parent / "web"
REPO_ROOT = Path(__file__).resolve().parent.parent
VENDOR_ENV = "CIPHERDESK_WEB_VENDOR"
NACL_FILE = "nacl-fast.min.js"

_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
# Assets revalidate quickly (an upgrade changes them; SRI pins the widget by hash).
ASSET_CACHE = "public, max-age=300"
PAGE_CACHE = "no-cache"


class WebAssetsError(RuntimeError):
    """The web assets cannot be built (tweetnacl missing): a clear start-up error."""


@dataclass(slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str
    cache: str = ASSET_CACHE
    cors: bool = False


def _asset(body: bytes, content_type: str, cache: str = ASSET_CACHE, cors: bool = False) -> Asset:
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return Asset(body=body, content_type=content_type, etag=etag, cache=cache, cors=cors)


def sri(body: bytes) -> str:
    """Subresource Integrity value (``sha384-<base64>``) of ``body``."""
    return "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode("ascii")


def find_nacl(environ: dict[str, str] | None = None) -> Path:
    """``nacl-fast.min.js``: ``$CIPHERDESK_WEB_VENDOR`` (a directory or the file itself),
    else ``<repo>/node_modules/tweetnacl/``."""
    env = os.environ if environ is None else environ
    candidates: list[Path] = []
    override = env.get(VENDOR_ENV)
    if override:
        path = Path(override).expanduser()
        candidates += [path, path / NACL_FILE, path / "tweetnacl" / NACL_FILE]
    candidates.append(REPO_ROOT / "node_modules" / "tweetnacl" / NACL_FILE)
    for path in candidates:
        if path.is_file():
            return path
    raise WebAssetsError(
        f"tweetnacl ({NACL_FILE}) not found in {', '.join(str(c) for c in candidates)}: "
        "run `make run` (or `npm ci` in the project root), or point "
        f"${VENDOR_ENV} at a directory containing {NACL_FILE}"
    )


@dataclass(slots=True)
class WebAssets:
    """Files and bundles, built once."""

    files: dict[str, Asset] = field(default_factory=dict)
    widget: Asset | None = None
    widget_css: Asset | None = None
    widget_integrity: str = ""
    pages: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, web_dir: Path = WEB_DIR, nacl_path: Path | None = None) -> WebAssets:
        nacl = (nacl_path or find_nacl()).read_bytes()
        assets = cls()
        read = {p.name: p.read_bytes() for p in sorted(web_dir.iterdir()) if p.is_file()}
        for name, body in read.items():
            ctype = _TYPES.get(Path(name).suffix)
            if ctype is None or name.endswith(".html"):
                continue
            assets.files[name] = _asset(body, ctype)
        for name, body in read.items():
            if name.endswith(".html"):
                assets.pages[name] = body.decode("utf-8")

        css = read["widget.css"]
        assets.widget_css = _asset(css, "text/css", cors=True)
        widget_code = read["widget.js"].replace(b"__CSS_INTEGRITY__", sri(css).encode())
        shared = read["protocol.js"] + b"\n" + read["ui.js"] + b"\n"
        # One function scope: tweetnacl sees a local `module` and exports into it instead
        # of creating `window.nacl` on the customer's page.
        bundle = (
            b"/*! cipherdesk widget; bundles tweetnacl 1.0.3 (public domain) */\n"
            b"(function () {\nvar module = { exports: {} };\n"
            + nacl
            + b"\nvar nacl = module.exports;\n"
            + shared
            + widget_code
            + b"\n})();\n"
        )
        assets.widget = _asset(bundle, "text/javascript", cors=True)
        assets.widget_integrity = sri(bundle)
        core = nacl + b"\n" + shared
        assets.files["core.js"] = _asset(core, "text/javascript")
        return assets


def embed_snippet(base_url: str, tenant: str, gateway_key: str, integrity: str) -> str:
    """The ``<script>`` tag a company pastes into its site (values HTML-escaped)."""
    q = lambda s: html.escape(s, quote=True)  # noqa: E731
    return (
        f'<script src="{q(base_url)}/widget.js" data-tenant="{q(tenant)}"\n'
        f'        data-gateway-key="{q(gateway_key)}"\n'
        f'        integrity="{q(integrity)}"\n'
        '        crossorigin="anonymous" async></script>'
    )


ASSETS: web.AppKey[WebAssets] = web.AppKey("cipherdesk_web_assets", WebAssets)


def _serve(request: web.Request, asset: Asset) -> web.Response:
    headers = {"ETag": asset.etag, "Cache-Control": asset.cache}
    if asset.cors:
        # The widget is loaded cross-origin with `crossorigin="anonymous"` (needed for SRI).
        headers["Access-Control-Allow-Origin"] = "*"
        headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    if request.headers.get("If-None-Match") == asset.etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=asset.body, content_type=asset.content_type, charset="utf-8"
                        if asset.content_type.startswith("text/") else None, headers=headers)


def public_base(request: web.Request, svc: Services) -> str:
    """The gateway URL as the browser sees it (``server.public_url`` wins when set)."""
    if svc.config.server.public_url:
        return svc.config.server.public_url.rstrip("/")
    return str(request.url.origin())


def _page(request: web.Request, name: str, **values: str) -> web.Response:
    assets = request.app[ASSETS]
    text = assets.pages[name]
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return _serve(request, _asset(text.encode("utf-8"), "text/html", cache=PAGE_CACHE))


async def widget_js(request: web.Request) -> web.Response:
    widget = request.app[ASSETS].widget
    assert widget is not None
    return _serve(request, widget)


async def widget_css(request: web.Request) -> web.Response:
    css = request.app[ASSETS].widget_css
    assert css is not None
    return _serve(request, css)


async def static(request: web.Request) -> web.Response:
    asset = request.app[ASSETS].files.get(request.match_info["name"])
    if asset is None:
        raise web.HTTPNotFound()
    return _serve(request, asset)


async def favicon(request: web.Request) -> web.Response:
    return _serve(request, request.app[ASSETS].files["favicon.svg"])


async def embed_info(request: web.Request) -> web.Response:
    """Public embed data (verify key and SRI hash are public by design)."""
    svc = request.app[SERVICES]
    assets = request.app[ASSETS]
    tenant = request.query.get("tenant", DEMO_TENANT)[:64]
    base = public_base(request, svc)
    return web.json_response({
        "src": f"{base}/widget.js",
        "integrity": assets.widget_integrity,
        "gateway_key": svc.identity.verify_key_b64,
        "tenant": tenant,
        "snippet": embed_snippet(base, tenant, svc.identity.verify_key_b64,
                                 assets.widget_integrity),
    }, headers={"Cache-Control": "no-cache"})


async def demo(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    assets = request.app[ASSETS]
    snippet = embed_snippet(public_base(request, svc), DEMO_TENANT,
                            svc.identity.verify_key_b64, assets.widget_integrity)
    return _page(request, "demo.html", SNIPPET=snippet, SNIPPET_TEXT=html.escape(snippet))


async def console(request: web.Request) -> web.Response:
    return _page(request, "console.html")


async def admin(request: web.Request) -> web.Response:
    return _page(request, "admin.html")


async def root(request: web.Request) -> web.Response:
    return _page(request, "index.html")


def setup_routes(app: web.Application, assets: WebAssets | None = None) -> None:
    """Register the pages; builds the bundles now so a missing tweetnacl fails start-up."""
    app[ASSETS] = assets or WebAssets.build()
    r = app.router
    r.add_get("/", root)
    r.add_get("/demo", demo)
    r.add_get("/console", console)
    r.add_get("/admin", admin)
    r.add_get("/widget.js", widget_js)
    r.add_get("/widget.css", widget_css)
    r.add_get("/embed.json", embed_info)
    r.add_get("/static/{name}", static)
    r.add_get("/favicon.ico", favicon)
