"""Passkeys in real Chromium with its virtual authenticator (DevTools WebAuthn domain:
real ceremonies, real keys, no mocks), in English and Chinese: an agent registers a
passkey on the admin page, logs out and back in with the passkey alone; a phishing page
on another origin that relays the ceremony to the gateway is refused; a tenant rule
requiring passkeys walks a TOTP login through enrolment to a passkey session."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from tests.e2e import browser as bx
from tests.e2e.browser import expect, new_page
from tests.gateway.helpers import bound_socket

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway

TEXT = {
    "en-US": {
        "login": "Log in with a passkey",
        "added": "Passkey added.",
        "saved": "Passkey saved",
    },
    "zh-CN": {"login": "使用通行密钥登录", "added": "已添加通行密钥。", "saved": "通行密钥已保存"},
}

PHISHING_PAGE = """<!doctype html><meta charset="utf-8"><title>Support login</title>
<button id="go">Log in</button><p id="out"></p>
<script>
document.getElementById('go').onclick = async () => {
  const started = await (await fetch('/relay/options', { method: 'POST' })).json();
  const cred = await navigator.credentials.get({
    publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(started.options) });
  const r = await fetch('/relay/login', { method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ challenge_id: started.challenge_id, credential: cred.toJSON() }) });
  document.getElementById('out').textContent = 'gateway:' + r.status;
};
</script>"""


def _local(gw: bx.Gateway) -> str:
    """The gateway as http://localhost:PORT: browsers refuse IP addresses as RP ids."""
    return gw.base_url.replace("127.0.0.1", "localhost")


async def _authenticator(ctx, page) -> None:
    cdp = await ctx.new_cdp_session(page)
    await cdp.send("WebAuthn.enable")
    await cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )


async def _password_login(page, gw: bx.Gateway, email: str, path: str) -> None:
    await page.goto(_local(gw) + path)
    await page.fill("#login-email", email)
    await page.fill("#login-password", gw.passwords[email])
    await page.fill("#login-otp", gw.otp(email))
    await page.click("form.login button[type=submit]")


async def _factor(page) -> str:
    return await page.evaluate("async () => (await (await fetch('/api/me')).json()).session_factor")


@pytest_asyncio.fixture(loop_scope="module")
async def phisher(gateway) -> AsyncIterator[str]:
    """A look-alike site on another origin that relays the passkey ceremony to the
    gateway from its own server (no Origin header: it is not a browser)."""
    target = _local(gateway)

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=PHISHING_PAGE, content_type="text/html")

    async def no_icon(_: web.Request) -> web.Response:
        return web.Response(status=204)

    async def relay(request: web.Request) -> web.Response:
        path = (
            "/api/login/passkey/options"
            if request.path.endswith("options")
            else "/api/login/passkey"
        )
        body = await request.read() or b"{}"
        async with (
            aiohttp.ClientSession() as http,
            http.post(target + path, data=body, headers={"Content-Type": "application/json"}) as r,
        ):
            return web.Response(
                status=r.status, body=await r.read(), content_type="application/json"
            )

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/favicon.ico", no_icon)
    app.router.add_post("/relay/options", relay)
    app.router.add_post("/relay/login", relay)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = bound_socket()
    await web.SockSite(runner, sock).start()
    try:
        yield f"http://localhost:{sock.getsockname()[1]}/"
    finally:
        with contextlib.suppress(Exception):
            await runner.cleanup()


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
async def test_register_log_in_and_phishing_fails(browser, gateway, phisher, locale):
    tag = locale.lower()
    email = f"pk-{tag}@example.com"
    agent_id = await gateway.agent(email, role="supervisor")
    ctx, page = await new_page(browser, locale=locale)
    try:
        await _authenticator(ctx, page)
        await _password_login(page, gateway, email, "/admin#sessions")
        await expect(page.locator("#passkeys")).to_be_visible()
        await page.fill("#passkey-name", "Chromium")
        await page.click("#add-passkey")
        await expect(page.locator("#toasts")).to_contain_text(TEXT[locale]["added"])
        await expect(page.locator("#passkeys-table tr[data-passkey]")).to_have_count(1)
        (stored,) = await gateway.svc.store.list_passkeys(agent_id)
        assert stored.name == "Chromium"
        assert await _factor(page) == "totp"

        # log out, then in with the passkey alone (the authenticator verifies the user)
        await page.click("header.topbar button.btn.ghost >> nth=-1")
        await page.get_by_role("button", name=TEXT[locale]["login"]).click()
        await expect(page.locator(".topbar")).to_be_visible()
        assert await _factor(page) == "passkey"
        assert (await gateway.svc.store.get_passkey(stored.credential_id)).last_used_at

        # the same authenticator on a look-alike origin: the signature names that origin
        await page.goto(phisher)
        await page.click("#go")
        await expect(page.locator("#out")).to_have_text("gateway:401")
        failed = await gateway.svc.store.query_audit(action="login.failed", actor=agent_id, limit=5)
        assert failed and failed[0].details["reason"] == "passkey_invalid"
        assert page.js_errors == []  # type: ignore[attr-defined]
    finally:
        await ctx.close()


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
async def test_tenant_rule_enrols_then_requires_the_passkey(browser, gateway, locale):
    tag = locale.lower()
    tenant = await gateway.svc.store.get_tenant("demo")
    assert tenant is not None
    tenant.settings = {**tenant.settings, "phishing_resistant_mfa": "staff"}
    await gateway.svc.store.update_tenant(tenant)
    gateway.svc.tenants.invalidate("demo")
    email = f"rule-{tag}@example.com"
    await gateway.agent(email, role="admin")
    ctx, page = await new_page(browser, locale=locale)
    try:
        await _authenticator(ctx, page)
        await _password_login(page, gateway, email, "/console")
        await expect(page.locator("#passkey-enrolment")).to_be_visible()
        await page.click("#enrol-passkey")
        await expect(page.locator("form.login .form-error")).to_contain_text(TEXT[locale]["saved"])
        await page.get_by_role("button", name=TEXT[locale]["login"]).click()
        await expect(page.locator(".topbar")).to_be_visible()
        assert await _factor(page) == "passkey"
        assert page.js_errors == []  # type: ignore[attr-defined]
    finally:
        await ctx.close()
        tenant.settings = {
            k: v for k, v in tenant.settings.items() if k != "phishing_resistant_mfa"
        }
        await gateway.svc.store.update_tenant(tenant)
        gateway.svc.tenants.invalidate("demo")
