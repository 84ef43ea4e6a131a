"""Real-browser tests of the admin pages and session handling in the console."""

from __future__ import annotations

import re

import aiohttp
import pytest

from tests.e2e import browser as bx
from tests.e2e.browser import (
    expect,
    login_console,
    new_page,
    screenshot,
)

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway


async def test_admin_pages_and_revocation(browser, gateway):
    await gateway.agent("root@example.com", role="admin", name="Rita Root")
    victim_id = await gateway.agent("eve@example.com", name="Eve")
    ctx_admin, admin = await new_page(browser)
    ctx_eve, eve = await new_page(browser)
    try:
        await login_console(eve, gateway, "eve@example.com")
        await expect(eve.locator(".pill[role=status]")).to_have_text("Online")

        await login_console(admin, gateway, "root@example.com", path="/admin")
        # Agents: invite one (issue 16.9); the one-time link is shown, no credential.
        await expect(admin.locator("#agents-table tbody tr")).to_have_count(2)
        await admin.fill("#invite-email", "new.agent@example.com")
        await admin.fill("#invite-name", "Nina New")
        await admin.select_option("#invite-role", "supervisor")
        await admin.click("#create-invite button[type=submit]")
        await expect(admin.locator("#new-invite-link")).to_contain_text("/invite#cdi_")
        await expect(admin.locator("#invites-table tbody tr")).to_have_count(1)
        await expect(admin.locator("#invites-table tbody tr")).to_contain_text("Pending")
        await expect(admin.locator("#agent-secret .otpauth")).to_have_count(0)
        await screenshot(admin, "admin")

        # Tenant settings round trip (CSRF header on the PATCH).
        await admin.click("nav a[href='#tenant']")
        await expect(admin.locator("#tenant-origins")).to_have_value(re.compile("127.0.0.1"))
        await admin.fill("#tenant-name", "Demo Shop")
        await admin.click("#tenant-form button[type=submit]")
        await expect(admin.locator("#toasts")).to_contain_text("saved")
        tenant = await gateway.svc.store.get_tenant("demo")
        assert tenant.name == "Demo Shop"

        # Policy "test a message".
        await admin.click("nav a[href='#policy']")
        await admin.fill("#policy-text", "card 4111 1111 1111 1111")
        await admin.click("#policy-test button[type=submit]")
        await expect(admin.locator("#policy-result")).to_contain_text("card")

        # Emergency: revoke Eve's sessions -> her console goes back to the login form.
        await admin.click("nav a[href='#emergency']")
        await admin.select_option("#revoke-agent", victim_id)
        await admin.click("#revoke-form button[type=submit]")
        await expect(admin.locator("#toasts")).to_contain_text("revoked")
        await expect(eve.locator("form.login")).to_be_visible()
        await expect(eve.locator(".form-error")).to_contain_text("session has ended")

        # Audit log with a filter shows the revocation and the logins.
        await admin.click("nav a[href='#audit']")
        await expect(admin.locator("#audit-table tbody tr").first).to_be_visible()
        await admin.fill("#audit-action", "login.ok")
        await admin.click("#audit-filters button[type=submit]")
        rows = admin.locator("#audit-table tbody tr")
        await expect(rows).to_have_count(2)
        await expect(rows.first).to_contain_text("login.ok")

        # Embed snippet: the same one /demo embeds, with key and SRI hash.
        await admin.click("nav a[href='#embed']")
        snippet = await admin.locator("#embed-snippet").text_content()
        assert f'data-gateway-key="{gateway.svc.identity.verify_key_b64}"' in snippet
        assert 'integrity="sha384-' in snippet and 'data-tenant="demo"' in snippet
        async with aiohttp.ClientSession() as http:
            async with http.get(gateway.base_url + "/demo") as resp:
                demo_html = await resp.text()
        assert snippet in demo_html
        assert admin.js_errors == [] and eve.js_errors == []
    finally:
        await ctx_admin.close()
        await ctx_eve.close()


async def test_supervisor_sees_flags_and_watches(browser, gateway):
    """Supervisor view: all active chats, watch (read-only), flags list."""
    await gateway.agent("ana@example.com", name="Ana")
    await gateway.agent("sue@example.com", role="supervisor", name="Sue")
    ctx_a, ana = await new_page(browser)
    ctx_s, sue = await new_page(browser)
    ctx_c, customer = await new_page(browser)
    try:
        await login_console(ana, gateway, "ana@example.com")
        await login_console(sue, gateway, "sue@example.com")
        await expect(sue.locator("#supervisor")).to_be_visible()
        await bx.open_widget(customer, gateway, name="Carl")
        await ana.locator(".queue-item button", has_text="Accept").click()
        await bx.customer_says(customer, "hello there")

        active = sue.locator("ul[aria-label='All active chats'] .queue-item")
        await expect(active).to_contain_text("with Ana")
        await active.locator("button", has_text="Watch").click()
        pane = sue.locator(".chat-pane:not([hidden])")
        await expect(pane.locator(".msg.them .text")).to_have_text(["hello there"])
        await expect(pane.locator(".composer")).to_be_hidden()
        await bx.agent_says(ana, "hi Carl")
        await expect(pane.locator(".msg .text")).to_have_text(["hello there", "hi Carl"])
        await expect(sue.locator("ul[aria-label='Flagged messages']")).to_be_visible()
        assert sue.js_errors == [] and ana.js_errors == []
    finally:
        for ctx in (ctx_a, ctx_s, ctx_c):
            await ctx.close()
