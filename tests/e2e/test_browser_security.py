"""Real-browser security checks: cross-origin agent sockets, pinned gateway key, SRI, CSP."""

from __future__ import annotations

import base64
import json
import re

import pytest
from aiohttp import web

from tests.e2e import browser as bx
from tests.e2e.browser import expect, login_console, new_page
from tests.gateway.helpers import serve_app

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway

ATTACKER_PAGE = """<!doctype html><html><body><p>totally innocent page</p>
<script>
  window.result = null;
  const ws = new WebSocket(%r + "/ws/agent");
  ws.onclose = (ev) => { window.result = {code: ev.code, reason: ev.reason}; };
</script></body></html>"""


async def test_other_origin_cannot_open_agent_socket(browser, gateway):
    """A page on another origin (same host, other port: same-site, so the browser even
    attaches the SameSite=Strict session cookie) gets close 4403 on /ws/agent."""
    await gateway.agent("ana@example.com", name="Ana")
    ws_base = gateway.base_url.replace("http://", "ws://")

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=ATTACKER_PAGE % ws_base, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    runner, port = await serve_app(app)
    ctx, console = await new_page(browser)
    try:
        await login_console(console, gateway, "ana@example.com")
        await expect(console.locator(".pill[role=status]")).to_have_text("Online")
        cookies = await ctx.cookies(gateway.base_url)
        assert any(c["name"] == "cd_session" and c["httpOnly"] for c in cookies)

        evil = await ctx.new_page()
        await evil.goto(f"http://127.0.0.1:{port}/")
        await evil.wait_for_function("window.result !== null")
        result = await evil.evaluate("window.result")
        assert result["code"] == 4403, result
        # The legitimate console is still connected.
        await expect(console.locator(".pill[role=status]")).to_have_text("Online")
    finally:
        await ctx.close()
        await runner.cleanup()


async def test_widget_refuses_a_swapped_server_key(browser, gateway):
    """A middlebox that swaps the hello's ephemeral key (to read the chat) is detected:
    the signature no longer matches the gateway key pinned in the embed snippet."""
    ctx, page = await new_page(browser)
    attacker_pk = base64.b64encode(bytes(range(32))).decode()
    swapped: list[bool] = []

    def middlebox(ws):
        server = ws.connect_to_server()

        def from_server(message):
            frame = json.loads(message)
            if frame.get("t") == "hello":
                frame["server_pk"] = attacker_pk
                swapped.append(True)
            ws.send(json.dumps(frame))

        server.on_message(from_server)
        ws.on_message(lambda message: server.send(message))

    try:
        await page.route_web_socket(re.compile(r".*/ws/customer.*"), middlebox)
        await bx.open_widget_form(page, gateway)
        alert = page.locator(".alert")
        await expect(alert).to_contain_text("could not verify")
        await expect(page.locator(".composer")).to_be_hidden()
        assert swapped
        assert await page.evaluate("localStorage.length") == 0
        # No chat was created on the gateway.
        assert await gateway.svc.store.list_chats("demo", states=("queued", "active")) == []
    finally:
        await ctx.close()


async def test_tampered_widget_script_is_not_executed(browser, gateway):
    ctx, page = await new_page(browser)

    async def tamper(route):
        response = await route.fetch()
        body = (await response.text()) + "\nwindow.tampered = true;\n"
        await route.fulfill(response=response, body=body)

    try:
        await page.route(gateway.base_url + "/widget.js", tamper)
        await page.goto(gateway.base_url + "/demo")
        await page.wait_for_timeout(500)
        assert await page.locator("#cipherdesk-widget").count() == 0
        assert await page.evaluate("window.tampered === undefined")
    finally:
        await ctx.close()


async def test_pages_send_strict_csp_and_keyboard_works(browser, gateway):
    ctx, page = await new_page(browser, bx.PHONE)
    try:
        response = await page.goto(gateway.base_url + "/demo")
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        # Keyboard only: Tab to the launcher, Enter opens, focus lands in the form,
        # Esc closes and returns focus to the launcher.
        launcher = page.locator(".launcher")
        await launcher.focus()
        await page.keyboard.press("Enter")
        await expect(page.locator("#cdw-panel")).to_be_visible()
        await expect(page.locator("#cdw-name")).to_be_focused()
        box = await page.locator("#cdw-panel").bounding_box()
        assert round(box["width"]) <= 375 and round(box["height"]) <= 667
        await page.keyboard.press("Escape")
        await expect(page.locator("#cdw-panel")).to_be_hidden()
        await expect(launcher).to_be_focused()
        assert await launcher.get_attribute("aria-expanded") == "false"
        assert page.js_errors == []
    finally:
        await ctx.close()
