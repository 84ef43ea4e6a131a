"""Real-browser tests of agent invitations and password changes (issues 16.9 and 14), in
English and Simplified Chinese.

* An admin creates an invite in the admin page; a *separate* browser context opens the
  one-time link, chooses a password (a weak one is refused with a localised reason),
  enrols TOTP from the secret shown on the page (the code is computed with pyotp) and
  lands in the console, logged in. The admin's page shows the invite as used.
* An agent whose password reset was forced from the emergency panel is sent back to the
  login form, then shown the change-password form, changes the password and continues in
  the console; the forced flag is gone.
* The step-up the server may ask for (``reauth_required``) is handled by the form: it
  asks for the authenticator code too.
"""

from __future__ import annotations

import time
from pathlib import Path

import pyotp
import pytest
import pytest_asyncio

from gateway.http.invites import invites_of
from tests.e2e import browser as bx
from tests.e2e.browser import (
    PHONE_390,
    Gateway,
    english_left,
    expect,
    login_console,
    new_page,
    screenshot,
)
from tests.e2e.test_browser_a11y import a11y_page, axe_problems
from tests.e2e.test_browser_layout import OVERFLOW_JS
from tests.gateway.helpers import FakeClock, start_gateway, totp_code

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway

OWN = "violet harbour lantern 47 quietly"
NEXT = "amber meadow compass 93 slowly"
TEXT = {
    "en": {
        "pending": "Pending",
        "used": "Used",
        "weak": "commonly used",
        "mismatch": "not the same",
        "forced": "Choose a new password",
        "online": "Online",
        "code": "authenticator app",
    },
    "zh-CN": {
        "pending": "待接受",
        "used": "已使用",
        "weak": "常用密码",
        "mismatch": "不一致",
        "forced": "请设置新密码",
        "online": "在线",
        "code": "身份验证器",
    },
}


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
async def test_invitee_sets_own_password_and_totp_then_lands_in_the_console(
    browser, gateway, locale
):
    text = TEXT[locale]
    await gateway.agent("root@example.com", role="admin", name="Rita Root")
    ctx_admin, admin = await new_page(browser, locale=locale)
    ctx_new, invitee = await new_page(browser, locale=locale)
    try:
        await login_console(admin, gateway, "root@example.com", path="/admin")
        # the tenant's link lifetime, from the same section
        await expect(admin.locator("#invite-ttl-hours")).to_have_value("72")
        await admin.fill("#invite-ttl-hours", "48")
        await admin.click("#invite-ttl-form button[type=submit]")
        await expect(admin.locator("#invite-ttl")).to_contain_text("48")
        await admin.fill("#invite-email", "nina@example.com")
        await admin.fill("#invite-name", "Nina New")
        await admin.select_option("#invite-role", "supervisor")
        await admin.click("#create-invite button[type=submit]")
        link = (await admin.locator("#new-invite-link").text_content()).strip()
        assert link.startswith(gateway.base_url + "/invite#cdi_")
        row = admin.locator("#invites-table tbody tr")
        await expect(row).to_have_count(1)
        stored = (await gateway.svc.store.list_invites("demo"))[0]
        assert stored.expires_at - stored.created_at == 48 * 3600
        assert link.split("#", 1)[1] not in repr(stored)
        await expect(row).to_contain_text(text["pending"])
        if locale == "zh-CN":
            assert await english_left(admin, ("cipherdesk", "Nina New", "Rita Root")) == []

        # the invitee, in a browser that shares nothing with the admin's; the token never
        # travels in a URL or a Referer (only in the page's POST bodies)
        token = link.split("#", 1)[1]
        leaks: list[str] = []

        def watch(request) -> None:
            headers = request.headers
            if token in request.url or token in headers.get("referer", ""):
                leaks.append(request.url)

        invitee.on("request", watch)
        # the page fits a phone (opening does not use the invite up)
        ctx_phone, phone = await new_page(browser, viewport=PHONE_390, locale=locale)
        try:
            await phone.goto(link)
            await expect(phone.locator("#invite-secret")).not_to_be_empty()
            m = await phone.evaluate(OVERFLOW_JS)
            assert m["page"] <= m["view"] and m["wide"] == [], m
        finally:
            await ctx_phone.close()
        await invitee.goto(link)
        await expect(invitee.locator("#invite-form")).to_be_visible()
        await expect(invitee.locator("#invite-form")).to_contain_text("nina@example.com")
        qr = invitee.locator("#invite-form img.qr")
        assert await qr.evaluate("img => img.complete && img.naturalWidth > 0")
        secret = (await invitee.locator("#invite-secret").text_content()).strip()
        if locale == "zh-CN":
            assert await english_left(invitee, ("cipherdesk", "Nina New")) == []
        await screenshot(invitee, f"invite-{locale}")

        await invitee.fill("#invite-password", OWN)
        await invitee.fill("#invite-confirm", OWN + "x")
        await invitee.fill("#invite-otp", pyotp.TOTP(secret).now())
        await invitee.click("#invite-form button[type=submit]")
        await expect(invitee.locator("#invite-form .form-error")).to_contain_text(text["mismatch"])

        await invitee.fill("#invite-password", "password1234")
        await invitee.fill("#invite-confirm", "password1234")
        await invitee.click("#invite-form button[type=submit]")
        await expect(invitee.locator("#invite-form .form-error")).to_contain_text(text["weak"])
        assert await gateway.svc.store.get_agent_by_email("nina@example.com") is None

        await invitee.fill("#invite-password", OWN)
        await invitee.fill("#invite-confirm", OWN)
        await invitee.fill("#invite-otp", pyotp.TOTP(secret).now())
        await invitee.click("#invite-form button[type=submit]")
        await expect(invitee.locator("#invite-done")).to_be_visible()
        await expect(invitee.locator("#recovery-codes li")).to_have_count(10)
        assert "#" not in invitee.url  # the token left the address bar
        await invitee.click("#invite-continue")
        await expect(invitee.locator(".topbar")).to_be_visible()
        await expect(invitee.locator(".topbar .who")).to_contain_text("Nina New")
        await expect(invitee.locator(".pill[role=status]")).to_have_text(text["online"])

        assert leaks == []
        # the link is spent; the admin sees it used and the new supervisor
        await invitee.goto(link)
        await expect(invitee.locator("#invite-error")).to_be_visible()
        await admin.reload()
        await expect(admin.locator("#invites-table tbody tr")).to_contain_text(text["used"])
        await expect(admin.locator("#agents-table tbody tr")).to_have_count(2)
        agent = await gateway.svc.store.get_agent_by_email("nina@example.com")
        assert agent is not None and agent.role == "supervisor" and agent.totp_confirmed
        # the refusals above (400 weak password, 410 spent link) are logged by Chromium
        # as failed loads; anything else is a script error
        unexpected = [e for e in invitee.js_errors if "Failed to load resource" not in e]
        assert not admin.js_errors and not unexpected, (admin.js_errors, invitee.js_errors)
    finally:
        await ctx_admin.close()
        await ctx_new.close()


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
async def test_forced_reset_agent_changes_password_and_continues(browser, gateway, locale):
    text = TEXT[locale]
    root = await gateway.agent("root@example.com", role="admin")
    ana = await gateway.agent("ana@example.com", name="Ana")
    ctx, page = await new_page(browser, locale=locale)
    try:
        await login_console(page, gateway, "ana@example.com")
        await expect(page.locator(".pill[role=status]")).to_have_text(text["online"])
        # the emergency panel's "force password reset" (sessions revoked too)
        await gateway.svc.governance.emergency.force_password_reset("demo", root, ip=None)
        await expect(page.locator("form.login")).to_be_visible()

        await page.fill("#login-email", "ana@example.com")
        await page.fill("#login-password", gateway.passwords["ana@example.com"])
        # the next step's code (accepted within the window): the first login used this one
        await page.fill(
            "#login-otp", totp_code(gateway.secrets["ana@example.com"], time.time() + 30)
        )
        await page.click("form.login button[type=submit]")
        form = page.locator("#password-form")
        await expect(form).to_be_visible()
        await expect(form.locator("h1")).to_have_text(text["forced"])
        if locale == "zh-CN":
            assert await english_left(page, ("cipherdesk",)) == []
        await screenshot(page, f"forced-password-{locale}")

        await page.fill("#pw-current", gateway.passwords["ana@example.com"])
        await page.fill("#pw-new", NEXT)
        await page.fill("#pw-confirm", NEXT)
        await page.click("#password-form button[type=submit]")
        await expect(page.locator(".topbar")).to_be_visible()
        await expect(page.locator(".pill[role=status]")).to_have_text(text["online"])
        assert not await gateway.svc.store.password_reset_forced(ana)
        agent = await gateway.svc.store.get_agent(ana)
        assert gateway.svc.logins.hasher.verify(agent.password_hash, NEXT)
        assert not [e for e in page.js_errors if "Failed to load resource" not in e]
    finally:
        await ctx.close()


@pytest_asyncio.fixture(loop_scope="module")
async def clocked(tmp_path: Path):
    """A gateway on a manual clock that starts at the real time (so the first login's
    pyotp code matches) and can be moved past the step-up window without waiting."""
    clock = FakeClock(time.time())
    runner, base_url, svc = await start_gateway(tmp_path, clock=clock)
    try:
        yield Gateway(runner, base_url, svc), clock
    finally:
        await runner.cleanup()


async def test_console_change_password_asks_for_the_code_when_step_up_is_stale(browser, clocked):
    gw, clock = clocked
    ana = await gw.agent("ana@example.com", name="Ana")
    ctx, page = await new_page(browser, locale="zh-CN")
    try:
        await login_console(page, gw, "ana@example.com")
        # the form can be left without changing anything
        await page.click("#change-password")
        await page.click("#pw-cancel")
        await expect(page.locator(".topbar")).to_be_visible()
        await page.click("#change-password")
        form = page.locator("#password-form")
        await expect(form).to_be_visible()
        # the login's step-up is over: the server answers reauth_required, the form
        # asks for the code and re-authenticates with the current password first
        clock.advance(gw.svc.config.auth.reauth_window + 1)
        await page.fill("#pw-current", gw.passwords["ana@example.com"])
        await page.fill("#pw-new", NEXT)
        await page.fill("#pw-confirm", NEXT)
        await page.click("#password-form button[type=submit]")
        await expect(form.locator(".form-error")).to_contain_text(TEXT["zh-CN"]["code"])
        await expect(page.locator("#pw-otp")).to_be_visible()
        await page.fill("#pw-otp", totp_code(gw.secrets["ana@example.com"], clock.now))
        await page.click("#password-form button[type=submit]")
        await expect(page.locator(".topbar")).to_be_visible()
        agent = await gw.svc.store.get_agent(ana)
        assert gw.svc.logins.hasher.verify(agent.password_hash, NEXT)
        actions = [e.action for e in await gw.svc.store.query_audit(tenant_id="demo")]
        assert "password.changed" in actions
        assert not [e for e in page.js_errors if "Failed to load resource" not in e]
    finally:
        await ctx.close()


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
async def test_axe_invite_page_and_password_form(browser, gateway, locale):
    """No serious or critical axe-core violation on the invite page and on the forced
    change-password form."""
    root = await gateway.agent("root@example.com", role="admin")
    await gateway.agent("ana@example.com", name="Ana")
    issued = await invites_of(gateway.svc).create(
        "demo", "nina@example.com", "agent", None, actor=root, ip="127.0.0.1"
    )
    ctx, page = await a11y_page(browser, locale)
    try:
        await page.goto(f"{gateway.base_url}/invite#{issued.token}")
        await expect(page.locator("#invite-secret")).not_to_be_empty()
        assert await axe_problems(page) == []

        await gateway.svc.governance.emergency.force_password_reset("demo", root, ip=None)
        await page.goto(gateway.base_url + "/console")
        await page.fill("#login-email", "ana@example.com")
        await page.fill("#login-password", gateway.passwords["ana@example.com"])
        await page.fill("#login-otp", gateway.otp("ana@example.com"))
        await page.click("form.login button[type=submit]")
        await expect(page.locator("#password-form")).to_be_visible()
        assert await axe_problems(page) == []
    finally:
        await ctx.close()


RESET_TEXT = {
    "en": {"heading": "Set up your authenticator again", "link": "Re-enrolment link for"},
    "zh-CN": {"heading": "重新绑定身份验证器", "link": "的重新绑定链接"},
}


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
async def test_mfa_reset_sends_the_agent_a_link_and_shows_the_admin_no_secret(
    browser, gateway, locale
):
    text = RESET_TEXT[locale]
    admin_email = f"reset-admin-{locale.lower()}@example.com"
    agent_email = f"reset-agent-{locale.lower()}@example.com"
    await gateway.agent(admin_email, role="admin")
    agent_id = await gateway.agent(agent_email, name="Resa Reset")
    ctx_admin, admin = await new_page(browser, locale=locale)
    ctx_agent, agent = await new_page(browser, locale=locale)
    try:
        await login_console(admin, gateway, admin_email, path="/admin")
        admin.on("dialog", lambda dialog: dialog.accept())
        row = admin.locator(f"#agents-table tr[data-agent='{agent_id}']")
        await row.locator("button", has_text=TEXT_RESET_BUTTON[locale]).click()
        box = admin.locator(".secret-box")
        await expect(box.locator("h3")).to_contain_text(text["link"])
        link = (await admin.locator("#mfa-reset-link").text_content()).strip()
        assert link.startswith(gateway.base_url + "/invite#cdi_")
        await expect(admin.locator("img.qr")).to_have_count(0)  # no secret for the admin
        await expect(admin.locator(".otpauth")).to_have_count(0)

        await agent.goto(link)
        await expect(agent.locator("#invite-title")).to_have_text(text["heading"])
        await expect(agent.locator("#invite-confirm")).to_have_count(0)
        assert await agent.locator("#invite-password").get_attribute("autocomplete") == (
            "current-password"
        )
        secret = (await agent.locator("#invite-secret").text_content()).strip()
        await screenshot(agent, f"mfa-reenrol-{locale}")
        await agent.fill("#invite-password", gateway.passwords[agent_email])
        await agent.fill("#invite-otp", pyotp.TOTP(secret).now())
        await agent.click("#invite-form button[type=submit]")
        await expect(agent.locator("#recovery-codes li")).to_have_count(10)
        await agent.click("#invite-continue")
        await expect(agent.locator(".topbar .who")).to_contain_text("Resa Reset")
        assert not admin.js_errors and not agent.js_errors, (admin.js_errors, agent.js_errors)
    finally:
        await ctx_admin.close()
        await ctx_agent.close()


TEXT_RESET_BUTTON = {"en": "Reset MFA", "zh-CN": "重置多因素认证"}
