"""The web pages the gateway serves: customer widget, demo host page, console, admin.

The npm libraries (tweetnacl, i18next, Chart.js) come from the copy an installed wheel carries
(``gateway/web/vendor/``), else ``node_modules`` of a source checkout (or
``$CIPHERDESK_WEB_VENDOR``), and must match the sha384 listed for the pinned versions in
``gateway/web_vendor.json`` (:mod:`gateway.web_vendor`); otherwise start-up fails.

Everything under ``gateway/web/`` is read once at start-up and served from memory with
an ETag. Two bundles are built at start-up:

* ``/widget.js`` — tweetnacl (``nacl-fast.min.js`` from npm, pinned in
  ``package-lock.json``) + ``protocol.js`` + ``e2e.js`` + the default end policy +
  ``policy.js`` + ``ui.js`` + ``files.js`` + ``widget.js``, wrapped in one
  function scope so nothing leaks into the host page's globals. Being ONE file, one
  Subresource Integrity hash (``sha384``) covers the crypto library and the widget; the
  hash of ``widget.css`` is baked into the bundle, so the stylesheet is pinned too.
* ``/static/core.js`` — tweetnacl + i18next + all catalogues + ``i18n.js`` +
  ``protocol.js`` + ``e2e.js`` + the default end policy + ``policy.js`` +
  ``policy_window.js`` + ``ui.js`` + ``files.js`` for the
  console and admin pages.

Chart.js (``dist/chart.umd.min.js``, pinned the same way) is served alone as
``/static/chart.js``: only the admin's quality report draws charts, so neither bundle
carries it.

Both bundles carry i18next (``i18next.min.js`` from npm, pinned like tweetnacl) and the
message catalogues (:mod:`gateway.i18n`); the widget only the sections it uses
(``common``, ``tick``, ``widget``, ``server``). Pages are rendered in the language negotiated by
:func:`page_language` (``?lang=``, the ``cd_lang`` cookie, ``Accept-Language``):
``{{t:key}}`` placeholders are replaced with catalogue texts and ``{{LANG}}`` with the
language tag the page scripts read from ``<html lang>``.

The embed snippet (``embed_snippet``) carries ``data-tenant``, ``data-gateway-key`` (the
gateway's Ed25519 verify key, which the widget pins) and ``integrity``. Pages contain no
inline script or style: the strict CSP set by :mod:`gateway.http.public` applies as is.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import html
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from gateway.e2e import e2e_config
from gateway.i18n import (
    LANG_COOKIE,
    LANGUAGES,
    Catalogue,
    load_catalogues,
    pick_language,
    translate,
)
from gateway.policy.end import end_document
from gateway.policy.engine import PolicyEngine
from gateway.services import SERVICES, Services
from gateway.tenants import DEMO_TENANT
from gateway.web_vendor import (
    VENDOR_DIR,
    Manifest,
    PinnedFile,
    VendorError,
    load_manifest,
    read_checked,
)

GATEWAY_DIR = Path(__file__).resolve().parent.parent
WEB_DIR = GATEWAY_DIR / "web"
REPO_ROOT = GATEWAY_DIR.parent
VENDOR_ENV = "CIPHERDESK_WEB_VENDOR"
NACL_FILE = "nacl-fast.min.js"
I18NEXT_FILE = "i18next.min.js"
CHART_FILE = "dist/chart.umd.min.js"
WIDGET_SECTIONS = ("common", "tick", "widget", "server")
_PLACEHOLDER = re.compile(r"\{\{t:([A-Za-z0-9_.]+)\}\}")

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
    """The web assets cannot be built (tweetnacl or i18next missing, or not the pinned
    bytes): a clear one-line start-up error, printed by the CLI without a traceback."""


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


def _find(entry: PinnedFile, environ: dict[str, str] | None, hint: str) -> Path:
    """Where ``entry``'s file is: ``$CIPHERDESK_WEB_VENDOR`` (the file itself, a directory
    holding it, or ``<package>/`` below that directory) when set, else the copy the wheel
    carries (``gateway/web/vendor/``), else ``node_modules`` of a source checkout."""
    env = os.environ if environ is None else environ
    candidates: list[Path] = []
    override = env.get(VENDOR_ENV)
    if override:
        path = Path(override).expanduser()
        if path.name == entry.path:
            candidates.append(path)
        candidates += [path / entry.path, path / entry.rel]
    candidates += [VENDOR_DIR / entry.rel, REPO_ROOT / "node_modules" / entry.rel]
    for path in candidates:
        if path.is_file():
            return path
    raise WebAssetsError(
        f"{entry.package} ({entry.path}) not found in {', '.join(str(c) for c in candidates)}: "
        "reinstall cipherdesk from its wheel, or in a source checkout run `make run` "
        f"(or `npm ci` in the project root){hint}"
    )


def find_nacl(environ: dict[str, str] | None = None) -> Path:
    """``nacl-fast.min.js`` (see :func:`_find` for the places searched)."""
    hint = f", or point ${VENDOR_ENV} at a directory containing {NACL_FILE}"
    return _find(pinned().get("tweetnacl", NACL_FILE), environ, hint)


def find_i18next(environ: dict[str, str] | None = None) -> Path:
    """``i18next.min.js`` (see :func:`_find` for the places searched)."""
    return _find(pinned().get("i18next", I18NEXT_FILE), environ, "")


@functools.cache
def pinned() -> Manifest:
    """The checked-in manifest of the browser library files (read once)."""
    try:
        return load_manifest()
    except VendorError as exc:
        raise WebAssetsError(str(exc)) from None


def find_chart(environ: dict[str, str] | None = None) -> Path:
    """Chart.js's UMD build (see :func:`_find` for the places searched)."""
    return _find(pinned().get("chart.js", CHART_FILE), environ, "")


def load_library(package: str, path: Path, file: str | None = None) -> bytes:
    """The bytes of ``package``'s pinned ``file`` (default: ``path``'s name) at ``path``,
    which must match the hash in ``gateway/web_vendor.json``: the server refuses to
    start on any other tweetnacl."""
    try:
        return read_checked(pinned().get(package, file or path.name), path)
    except VendorError as exc:
        raise WebAssetsError(str(exc)) from None


def _umd(code: bytes, name: bytes) -> bytes:
    """A UMD library evaluated in its own scope with a local CommonJS ``module``: it
    exports there, never onto the host page's globals or into an AMD loader."""
    return (
        b"var " + name + b" = (function () { var module = { exports: {} }; "
        b"var exports = module.exports;\n" + code + b"\nreturn module.exports; })();\n"
    )


def _catalogue_script(cats: dict[str, Catalogue], sections: tuple[str, ...] | None) -> bytes:
    picked = {
        lang: ({k: v for k, v in cat.items() if k in sections} if sections else cat)
        for lang, cat in cats.items()
    }
    text = json.dumps(picked, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    # JSON inside a script: "</" must not close anything, U+2028/9 are fine in ES2019+.
    return b"var CIPHERDESK_CATALOGUES = " + text.replace("</", "<\\/").encode() + b";\n"


@dataclass(slots=True)
class WebAssets:
    """Files and bundles, built once."""

    files: dict[str, Asset] = field(default_factory=dict)
    widget: Asset | None = None
    widget_css: Asset | None = None
    widget_integrity: str = ""
    pages: dict[str, str] = field(default_factory=dict)
    catalogues: dict[str, Catalogue] = field(default_factory=dict)
    widget_gzip_bytes: int = 0

    @classmethod
    def build(cls, web_dir: Path = WEB_DIR, nacl_path: Path | None = None) -> WebAssets:
        nacl = load_library("tweetnacl", nacl_path or find_nacl())
        i18next = _umd(load_library("i18next", find_i18next()), b"i18next")
        assets = cls()
        assets.catalogues = load_catalogues(web_dir / "i18n")
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
        shared = (
            read["protocol.js"]
            + b"\n"
            + read["e2e.js"]
            + b"\n"
            + default_end_policy_script()
            + read["policy.js"]
            + b"\n"
            + read["policy_window.js"]
            + b"\n"
            + read["ui.js"]
            + b"\n"
            + read["files.js"]
            + b"\n"
        )
        i18n_widget = (
            i18next
            + _catalogue_script(assets.catalogues, WIDGET_SECTIONS)
            + read["i18n.js"]
            + b"\n"
        )
        i18n_all = i18next + _catalogue_script(assets.catalogues, None) + read["i18n.js"] + b"\n"
        # One function scope: tweetnacl sees a local `module` and exports into it instead
        # of creating `window.nacl` on the customer's page.
        bundle = (
            b"/*! cipherdesk widget; bundles tweetnacl 1.0.3 (public domain) and i18next (MIT) */\n"
            b"(function () {\nvar module = { exports: {} };\n"
            + nacl
            + b"\nvar nacl = module.exports;\n"
            + i18n_widget
            + shared
            + widget_code
            + b"\n})();\n"
        )
        assets.widget = _asset(bundle, "text/javascript", cors=True)
        assets.widget_integrity = sri(bundle)
        assets.widget_gzip_bytes = len(gzip.compress(bundle, 9))
        core = nacl + b"\n" + i18n_all + shared
        assets.files["core.js"] = _asset(core, "text/javascript")
        chart = load_library("chart.js", find_chart(), CHART_FILE)
        assets.files["chart.js"] = _asset(chart, "text/javascript")
        return assets


@functools.cache
def default_end_policy_script() -> bytes:
    """``CipherdeskPolicyDefault``: the default policy compiled for the end engines
    (gateway/policy/end.py), what a widget runs when its tenant signed none. Compiled with
    ``issued = 0`` so the bundle -- and its SRI hash -- is the same on every start."""
    document = end_document(PolicyEngine(), None, 0)
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return b"var CipherdeskPolicyDefault = " + text.encode("utf-8") + b";\n"


def embed_snippet(
    base_url: str,
    tenant: str,
    gateway_key: str,
    integrity: str,
    lang: str | None = None,
    tenant_key: str | None = None,
) -> str:
    """The ``<script>`` tag a company pastes into its site (values HTML-escaped).
    ``lang`` adds ``data-lang`` (otherwise the widget follows the browser's language);
    ``tenant_key`` adds ``data-tenant-key`` (end-to-end mode: the pin that makes it hold,
    together with ``integrity``)."""
    q = lambda s: html.escape(s, quote=True)  # noqa: E731
    lang_attr = f' data-lang="{q(lang)}"' if lang else ""
    pin = f'        data-tenant-key="{q(tenant_key)}"\n' if tenant_key else ""
    return (
        f'<script src="{q(base_url)}/widget.js" data-tenant="{q(tenant)}"{lang_attr}\n'
        f'        data-gateway-key="{q(gateway_key)}"\n'
        f"{pin}"
        f'        integrity="{q(integrity)}"\n'
        '        crossorigin="anonymous" async></script>'
    )


async def _tenant_key(svc: Services, tenant_id: str) -> str | None:
    """The verify key to pin for a tenant in e2e mode (None in inspect mode)."""
    tenant = await svc.tenants.get(tenant_id)
    config = e2e_config(tenant) if tenant is not None else None
    return config.verify_key if config is not None and config.mode == "e2e" else None


ASSETS: web.AppKey[WebAssets] = web.AppKey("cipherdesk_web_assets", WebAssets)


def _serve(request: web.Request, asset: Asset) -> web.Response:
    headers = {"ETag": asset.etag, "Cache-Control": asset.cache}
    if asset.cors:
        # The widget is loaded cross-origin with `crossorigin="anonymous"` (needed for SRI).
        headers["Access-Control-Allow-Origin"] = "*"
        headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    if request.headers.get("If-None-Match") == asset.etag:
        return web.Response(status=304, headers=headers)
    return web.Response(
        body=asset.body,
        content_type=asset.content_type,
        charset="utf-8" if asset.content_type.startswith("text/") else None,
        headers=headers,
    )


def public_base(request: web.Request, svc: Services) -> str:
    """The gateway URL as the browser sees it (``server.public_url`` wins when set)."""
    if svc.config.server.public_url:
        return svc.config.server.public_url.rstrip("/")
    return str(request.url.origin())


def page_language(request: web.Request) -> str:
    """``?lang=`` (a supported tag), else the ``cd_lang`` cookie, else Accept-Language."""
    asked = request.query.get("lang", "")
    if asked in LANGUAGES:
        return asked
    cookie = request.cookies.get(LANG_COOKIE, "")
    if cookie in LANGUAGES:
        return cookie
    return pick_language(request.headers.get("Accept-Language", "")[:512])


def page(request: web.Request, name: str, **values: str) -> web.Response:
    """Page ``name`` of ``gateway/web/`` in the negotiated language (placeholders filled)."""
    assets = request.app[ASSETS]
    lang = page_language(request)
    text = assets.pages[name]
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    text = text.replace("{{LANG}}", lang)
    cats = assets.catalogues
    text = _PLACEHOLDER.sub(
        lambda m: html.escape(translate(lang, m.group(1), cats), quote=True), text
    )
    response = _serve(request, _asset(text.encode("utf-8"), "text/html", cache=PAGE_CACHE))
    response.headers["Vary"] = "Accept-Language, Cookie"
    response.headers["Content-Language"] = lang
    return response


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
    return web.json_response(
        {
            "src": f"{base}/widget.js",
            "integrity": assets.widget_integrity,
            "gateway_key": svc.identity.verify_key_b64,
            "tenant": tenant,
            "snippet": embed_snippet(
                base,
                tenant,
                svc.identity.verify_key_b64,
                assets.widget_integrity,
                tenant_key=await _tenant_key(svc, tenant),
            ),
        },
        headers={"Cache-Control": "no-cache"},
    )


async def demo(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    assets = request.app[ASSETS]
    snippet = embed_snippet(
        public_base(request, svc),
        DEMO_TENANT,
        svc.identity.verify_key_b64,
        assets.widget_integrity,
        lang=asked if (asked := request.query.get("lang")) in LANGUAGES else None,
        tenant_key=await _tenant_key(svc, DEMO_TENANT),
    )
    return page(request, "demo.html", SNIPPET=snippet, SNIPPET_TEXT=html.escape(snippet))


async def console(request: web.Request) -> web.Response:
    return page(request, "console.html")


async def admin(request: web.Request) -> web.Response:
    return page(request, "admin.html")


async def root(request: web.Request) -> web.Response:
    return page(request, "index.html")


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
