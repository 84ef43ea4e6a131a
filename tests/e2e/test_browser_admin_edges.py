"""Admin rough edges fixed, in real Chromium (English and Chinese): the policy test shows
the delivered (masked) text, the audit log names agents and filters by name or e-mail,
freezing a tenant shows live customers a banner, blocked replies can be edited."""

from __future__ import annotations

import pytest

from tests.e2e import browser as bx
from tests.e2e.browser import (
    agent_says,
    expect,
    login_console,
    new_page,
    open_widget_form,
    screenshot,
)

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway

CARD = "4111 1111 1111 1111"


@pytest.mark.parametrize(("locale", "blocked"), [("en-US", "Not delivered"), ("zh-CN", "不会送达")])
async def test_policy_test_shows_the_delivered_text(browser, gateway, locale, blocked):
    await gateway.agent("root@example.com", role="admin", name="Root")
    ctx, admin = await new_page(browser, locale=locale)
    try:
        await login_console(admin, gateway, "root@example.com", path="/admin#policy")
        await admin.fill("#policy-text", "my card is " + CARD)
        await admin.select_option("#policy-dir", "customer")
        await admin.click("#policy-test button[type=submit]")
        delivered = admin.locator("#policy-result .policy-delivered")
        await expect(delivered).to_contain_text("1111")
        await expect(delivered).not_to_contain_text(CARD)  # masked
        result = admin.locator("#policy-result")
        await expect(result).not_to_contain_text("[object")
        await expect(result).not_to_contain_text("null")
        await admin.select_option("#policy-dir", "agent")  # agents may not send cards
        await admin.click("#policy-test button[type=submit]")
        await expect(delivered).to_contain_text(blocked)
        await expect(result).not_to_contain_text("[object")
    finally:
        await ctx.close()


async def test_audit_shows_names_and_filters_by_name_or_email(browser, gateway):
    await gateway.agent("root@example.com", role="admin", name="Root")
    bob_id = await gateway.agent("bob@example.com", name="Bob")
    await gateway.agent("bobby@example.com", name="Bobby")
    ctx, admin = await new_page(browser)
    ctx_b, bob = await new_page(browser)
    try:
        await login_console(bob, gateway, "bob@example.com")
        await login_console(admin, gateway, "root@example.com", path="/admin#audit")
        rows = admin.locator("#audit-table tbody tr")
        await expect(rows.first).to_be_visible()
        # Filter by e-mail: only Bob's records, labelled with his name (id below it).
        await admin.fill("#audit-actor", "bob@example.com")
        await admin.click("#audit-filters button[type=submit]")
        await expect(rows.first.locator("td").nth(2)).to_contain_text("Bob")
        actors = await rows.locator("td:nth-child(3) .mono").all_inner_texts()
        assert actors and set(actors) == {bob_id}
        # By exact display name too; a part matching two agents asks for more.
        await admin.fill("#audit-actor", "bob")
        await admin.click("#audit-filters button[type=submit]")
        await expect(rows.first.locator("td").nth(2)).to_contain_text("Bob")
        await admin.fill("#audit-actor", "bo")
        await admin.click("#audit-filters button[type=submit]")
        await expect(admin.locator("#toasts")).to_contain_text("Several agents match")
        await screenshot(admin, "admin-audit-names")
    finally:
        await ctx.close()
        await ctx_b.close()


@pytest.mark.parametrize(
    ("locale", "banner", "back"),
    [
        ("en-US", "temporarily paused", "available again"),
        ("zh-CN", "在线客服暂时暂停服务", "已恢复服务"),
    ],
)
async def test_freezing_shows_live_customers_a_banner(browser, gateway, locale, banner, back):
    await gateway.agent("root@example.com", role="admin", name="Root")
    ctx, admin = await new_page(browser, locale=locale)
    ctx_c, customer = await new_page(browser, locale=locale)
    try:
        await open_widget_form(customer, gateway, name="Ada", topic=None)
        await expect(customer.locator("#cdw-input")).to_be_enabled()
        await login_console(admin, gateway, "root@example.com", path="/admin#emergency")
        admin.on("dialog", lambda d: d.accept())
        await admin.click("#freeze-btn")
        paused = customer.locator(".paused")
        await expect(paused).to_be_visible()
        await expect(paused).to_contain_text(banner)
        await expect(customer.locator("#cdw-input")).to_be_disabled()
        await screenshot(customer, f"widget-paused-{locale}")
        await admin.click("#freeze-btn")  # unfreeze
        await expect(paused).to_be_hidden()
        await expect(customer.locator(".log")).to_contain_text(back)
        await expect(customer.locator("#cdw-input")).to_be_enabled()
    finally:
        await ctx.close()
        await ctx_c.close()


async def test_blocked_reply_can_be_edited_and_sent(browser, gateway):
    await gateway.agent("ana@example.com", name="Ana")
    ctx_a, ana = await new_page(browser, locale="zh-CN")
    ctx_c, customer = await new_page(browser)
    try:
        await login_console(ana, gateway, "ana@example.com")
        await open_widget_form(customer, gateway, name="Ada", topic=None)
        await ana.locator(".queue-item button.primary").click()
        pane = ana.locator(".chat-pane:not([hidden])")
        await agent_says(ana, "卡号 " + CARD)
        failed = pane.locator(".msg.me[data-state='failed']")
        await expect(failed).to_have_count(1)
        await failed.locator(".fix-edit").click()
        await expect(failed).to_have_count(0)
        box = pane.locator("textarea.chat-input")
        await expect(box).to_have_value("卡号 " + CARD)
        await box.fill("请在支付页面填写卡号")
        await box.press("Enter")
        await expect(pane.locator(".msg.me").last).to_have_attribute("data-state", "stored")
        await expect(customer.locator(".msg.agent .text")).to_have_text(["请在支付页面填写卡号"])
    finally:
        await ctx_a.close()
        await ctx_c.close()
