"""Shared canned responses in real Chromium (Chinese UI): an admin defines /refund with
{customer_name}; a reply the policy would block is refused on the row; an agent types
/refund + space and gets the team's text for this customer."""

from __future__ import annotations

import pytest

from tests.e2e import browser as bx
from tests.e2e.browser import expect, login_console, new_page, open_widget_form

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway


async def test_team_canned_responses_with_shortcuts(browser, gateway):
    await gateway.agent("root@example.com", role="admin", name="Root")
    await gateway.agent("ana@example.com", name="小安")
    ctx, admin = await new_page(browser, locale="zh-CN")
    ctx_a, ana = await new_page(browser, locale="zh-CN")
    ctx_c, customer = await new_page(browser, locale="zh-CN")
    try:
        await login_console(admin, gateway, "root@example.com", path="/admin#canned")
        await expect(admin.locator("main h1")).to_have_text("快捷回复")
        form = admin.locator("#canned-form")
        await form.locator("button", has_text="添加回复").click()
        await form.locator(".canned-shortcut").nth(0).fill("/refund")
        refund = "{customer_name}您好，退款将在 3 个工作日内到账。"
        await form.locator(".canned-text").nth(0).fill(refund)
        await form.locator("button", has_text="添加回复").click()
        await form.locator(".canned-shortcut").nth(1).fill("/card")
        await form.locator(".canned-text").nth(1).fill("卡号 4111 1111 1111 1111")
        await form.locator("button[type=submit]").click()
        await expect(form.locator(".form-error")).to_have_text(
            "第 2 条：该文本会被安全策略拦截（银行卡号）。"
        )
        await expect(form.locator(".canned-row").nth(1)).to_have_class("canned-row bad")
        await form.locator(".canned-row").nth(1).locator("button").click()  # remove it
        await form.locator("button[type=submit]").click()
        await expect(admin.locator("#toasts")).to_contain_text("快捷回复已保存")

        await login_console(ana, gateway, "ana@example.com")
        await open_widget_form(customer, gateway, name="李雷", topic=None)
        await ana.locator(".queue-item button.primary").click()
        box = ana.locator(".chat-pane:not([hidden]) textarea.chat-input")
        await box.press_sequentially("/refund ")
        await expect(box).to_have_value("李雷您好，退款将在 3 个工作日内到账。")
        await box.press("Enter")
        await expect(customer.locator(".msg.agent .text")).to_have_text(
            ["李雷您好，退款将在 3 个工作日内到账。"]
        )
        # The team's responses are also in the picker, above the tab's own.
        picker = ana.locator(".chat-pane:not([hidden]) select.canned")
        team = picker.locator("optgroup").first
        await expect(team).to_have_attribute("label", "团队（快捷指令）")
        await expect(picker.locator("option[value='s:0']")).to_contain_text("/refund")
    finally:
        await ctx.close()
        await ctx_a.close()
        await ctx_c.close()
