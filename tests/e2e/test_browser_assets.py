"""The web assets over plain HTTP (no browser): bundle, SRI, cache headers, no inline code."""

from __future__ import annotations

import base64
import hashlib
import re

import aiohttp
import pytest

from gateway.http import web as http_web
from tests.gateway.helpers import start_gateway

WEB = http_web.WEB_DIR


@pytest.fixture
async def gw(tmp_path):
    runner, base_url, svc = await start_gateway(tmp_path)
    async with aiohttp.ClientSession() as http:
        yield http, base_url, svc
    await runner.cleanup()


async def test_widget_bundle_matches_the_snippet_integrity(gw):
    http, base, svc = gw
    async with http.get(base + "/widget.js") as resp:
        body = await resp.read()
        assert resp.status == 200
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        assert resp.headers["Content-Type"].startswith("text/javascript")
        etag = resp.headers["ETag"]
    async with http.get(base + "/demo") as resp:
        demo = await resp.text()
        assert resp.headers["Cache-Control"] == "no-cache"
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    integrity = "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode()
    assert f'integrity="{integrity}"' in demo
    assert f'data-gateway-key="{svc.identity.verify_key_b64}"' in demo
    # tweetnacl is inside, wrapped so it does not become a global of the host page
    assert b"var module = { exports: {} };" in body and b"nacl.box.before" in body
    async with http.get(base + "/widget.css") as resp:
        css = await resp.read()
    css_sri = "sha384-" + base64.b64encode(hashlib.sha384(css).digest()).decode()
    assert css_sri.encode() in body
    async with http.get(base + "/widget.js", headers={"If-None-Match": etag}) as resp:
        assert resp.status == 304


async def test_static_files_and_embed_info(gw):
    http, base, svc = gw
    for path in (
        "/console",
        "/admin",
        "/",
        "/static/core.js",
        "/static/console.js",
        "/static/admin.js",
        "/static/app.css",
        "/favicon.ico",
    ):
        async with http.get(base + path) as resp:
            assert resp.status == 200, path
    async with http.get(base + "/static/../http_web.py") as resp:
        assert resp.status == 404
    async with http.get(base + "/static/nope.js") as resp:
        assert resp.status == 404
    async with http.get(base + "/embed.json?tenant=acme") as resp:
        info = await resp.json()
    assert info["gateway_key"] == svc.identity.verify_key_b64
    assert 'data-tenant="acme"' in info["snippet"]


def test_pages_have_no_inline_script_or_style():
    for page in WEB.glob("*.html"):
        text = page.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag, (page.name, tag)
        assert "<style" not in text, page.name
        assert not re.search(r"<[^>]*\s(on[a-z]+|style)=", text), page.name
    for script in WEB.glob("*.js"):
        assert "innerHTML" not in script.read_text(), script.name


def test_missing_tweetnacl_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(http_web, "REPO_ROOT", tmp_path)
    with pytest.raises(http_web.WebAssetsError, match="npm ci"):
        http_web.find_nacl({})


def test_vendor_override(tmp_path):
    (tmp_path / "nacl-fast.min.js").write_text("/* nacl */")
    assert (
        http_web.find_nacl({"CIPHERDESK_WEB_VENDOR": str(tmp_path)})
        == tmp_path / "nacl-fast.min.js"
    )
