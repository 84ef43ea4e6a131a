"""Real-browser test of "My sessions" (issue 20.5): an agent logged in on two browsers
ends the other one from the admin page; that browser's console drops to the login form.
Then an admin sets the dormancy rule and sees last logins (zh-CN page)."""

from __future__ import annotations

import pytest

from tests.e2e import browser as bx
from tests.e2e.browser import english_left, expect, login_console, new_page, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway


async def test_agent_ends_their_other_session_from_the_page(browser, gateway):
    await gateway.agent("kim@example.com", name="Kim")
    ctx_a, laptop = await new_page(browser)
    ctx_b, phone = await new_page(browser)
    try:
        await login_console(phone, gateway, "kim@example.com")
        await expect(phone.locator(".pill[role=status]")).to_have_text("Online")
        # a second login needs the next TOTP step: wait for it rather than replay a code
        secret_step = gateway.otp("kim@example.com")
        while gateway.otp("kim@example.com") == secret_step:
            await laptop.wait_for_timeout(500)
        await login_console(laptop, gateway, "kim@example.com", path="/admin#sessions")
        await laptop.click("nav a[href='#sessions']")
        rows = laptop.locator("#sessions-table tbody tr")
        await expect(rows).to_have_count(2)
        await expect(rows.filter(has_text="This session")).to_have_count(1)
        await expect(rows.first).to_contain_text("127.0.0.0/24")
        await screenshot(laptop, "my-sessions")
        await rows.locator("button").click()
        await expect(laptop.locator("#toasts")).to_contain_text("Session ended")
        await expect(rows).to_have_count(1)
        await expect(phone.locator("form.login")).to_be_visible()
        assert not laptop.js_errors, laptop.js_errors
    finally:
        await ctx_a.close()
        await ctx_b.close()


async def test_admin_sets_the_dormancy_rule_in_chinese(browser, gateway):
    await gateway.agent("root@example.com", role="admin", name="Rita")
    await gateway.agent("quiet@example.com")
    context, page = await new_page(browser, locale="zh-CN")
    try:
        await login_console(page, gateway, "root@example.com", path="/admin")
        await page.click("nav a[href='#activity']")
        await expect(page.locator("main h1")).to_have_text("最近登录")
        await expect(page.locator("#activity-table tbody tr")).to_have_count(2)
        await expect(page.locator("#activity-table")).to_contain_text("从未使用")
        await page.fill("#dormancy-days", "45")
        await page.click("#dormancy-form button[type=submit]")
        await expect(page.locator("#toasts")).to_contain_text("规则已保存")
        tenant = await gateway.svc.store.get_tenant("demo")
        assert tenant.settings["dormant_disable_days"] == 45
        assert await english_left(page, ("cipherdesk",)) == []
        await page.click("nav a[href='#sessions']")
        await expect(page.locator("#sessions-table tbody tr")).to_have_count(1)
        assert await english_left(page, ("cipherdesk",)) == []
        assert not page.js_errors, page.js_errors
    finally:
        await context.close()
