"""Real-browser tests of the Chinese UI: widget, console and admin in zh-CN (browser
language) and zh-TW (the embed snippet's data-lang), with no English left on screen."""

from __future__ import annotations

import re

import pytest

from tests.e2e import browser as bx
from tests.e2e.browser import (
    DESKTOP,
    PHONE_390,
    agent_says,
    english_left,
    expect,
    login_console,
    new_page,
    screenshot,
)

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway

# Brand and product names on the demo shop page are not translated.
# Proper names that stay Latin in the Chinese UI (the product, the demo shop, a protocol
# and an identity provider named on the single sign-on panel).
ALLOWED = ("cipherdesk", "Northwind Outfitters", "OpenID Connect", "Microsoft Entra ID")


async def test_chat_in_simplified_chinese(browser, gateway):
    await gateway.agent("ana@example.com", role="supervisor", name="小安")
    ctx_a, ana = await new_page(browser, locale="zh-CN")
    ctx_c, customer = await new_page(browser, locale="zh-CN")
    try:
        # Console: Accept-Language zh-CN renders the page in Chinese, login form included.
        await ana.goto(gateway.base_url + "/console")
        await expect(ana.locator("form.login button[type=submit]")).to_have_text("登录")
        assert await ana.locator("html").get_attribute("lang") == "zh-CN"
        assert await english_left(ana, ALLOWED) == []
        await login_console(ana, gateway, "ana@example.com")
        await expect(ana.locator(".pill[role=status]")).to_have_text("在线")

        # Widget: no data-lang, so it follows navigator.languages (zh-CN).
        await customer.goto(gateway.base_url + "/demo")
        launcher = customer.locator("#cipherdesk-widget >> .launcher")
        await expect(launcher).to_contain_text("在线咨询")
        await launcher.click()
        await expect(customer.locator(".prechat button[type=submit]")).to_have_text("开始聊天")
        assert await english_left(customer, ALLOWED) == []
        await customer.fill("#cdw-name", "李雷")
        await customer.select_option("#cdw-topic", "账单与付款")
        await customer.click(".prechat button[type=submit]")
        await expect(customer.locator(".status")).to_have_text("正在等待客服…")

        item = ana.locator("ul[aria-label='等待中的会话'] .queue-item")
        await expect(item).to_contain_text("李雷")
        await expect(item).to_contain_text("未验证")
        await item.locator("button", has_text="接入").click()
        await expect(customer.locator(".status")).to_have_text("正在与 小安 聊天")
        await expect(customer.locator(".log")).to_contain_text("小安 加入了会话")

        # A policy notice built from the frame's codes, in the customer's language.
        await customer.fill("#cdw-input", "我的卡号是 4111 1111 1111 1111")
        await customer.press("#cdw-input", "Enter")
        notice = customer.locator(".sys.notice").last
        await expect(notice).to_contain_text("银行卡号")
        await expect(notice).to_contain_text("已被隐藏。请勿在聊天中发送银行卡信息")  # no space

        hello = "您好，请问有什么可以帮您？"
        await agent_says(ana, hello)
        await expect(customer.locator(".msg.agent .text")).to_have_text([hello])
        await expect(customer.locator(".msg.agent .who")).to_have_text(["小安"])

        assert await english_left(customer, ALLOWED) == []
        assert await english_left(ana, ALLOWED) == []
        await screenshot(customer, "widget-zh-CN")
        await screenshot(ana, "console-zh-CN")
        for page, name in ((customer, "widget-zh-CN-phone"), (ana, "console-zh-CN-phone")):
            await page.set_viewport_size(PHONE_390)
            await screenshot(page, name)
            await page.set_viewport_size(DESKTOP)
        assert ana.js_errors == [] and customer.js_errors == []  # type: ignore[attr-defined]
    finally:
        await ctx_a.close()
        await ctx_c.close()


async def test_widget_language_from_the_embed_snippet(browser, gateway):
    """An English browser on a page whose snippet says data-lang="zh-TW": the widget is
    in Traditional Chinese (generated from zh-CN by OpenCC, Taiwan phrasing)."""
    ctx, page = await new_page(browser, locale="en-US")
    try:
        await page.goto(gateway.base_url + "/demo?lang=zh-TW")
        launcher = page.locator("#cipherdesk-widget >> .launcher")
        await expect(launcher).to_contain_text("線上諮詢")
        # i18next and the catalogues stay inside the widget's scope: nothing on the host page.
        leaked = await page.evaluate(
            "() => [typeof window.i18next, typeof window.CipherdeskI18n,"
            " typeof window.CIPHERDESK_CATALOGUES, typeof window.nacl]"
        )
        assert leaked == ["undefined"] * 4
        await launcher.click()
        await expect(page.locator(".prechat button[type=submit]")).to_have_text("開始聊天")
        assert await english_left(page, ALLOWED) == []
        await screenshot(page, "widget-zh-TW")
    finally:
        await ctx.close()


ADMIN_SECTIONS = [
    "agents",
    "tenant",
    "policy",
    "canned",
    "plugins",
    "audit",
    "alerts",
    "incidents",
    "approvals",
    "emergency",
    "embed",
]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE_390], ids=["desktop", "phone"])
async def test_admin_in_chinese(browser, gateway, viewport):
    await gateway.agent("root@example.com", role="admin", name="管理员")
    ctx, page = await new_page(browser, viewport=viewport, locale="zh-CN")
    try:
        await login_console(page, gateway, "root@example.com", path="/admin")
        await expect(page.locator("nav.admin-nav a").first).to_have_text("客服与角色")
        for section in ADMIN_SECTIONS:
            await page.goto(gateway.base_url + "/admin#" + section)
            await expect(page.locator("main h1")).not_to_be_empty()
            await page.wait_for_load_state("networkidle")
            left = await english_left(page, ALLOWED)
            assert left == [], (section, left)
            if viewport is DESKTOP and section in ("agents", "audit"):
                await screenshot(page, f"admin-{section}-zh-CN")
            if viewport is PHONE_390 and section == "agents":
                await screenshot(page, "admin-agents-zh-CN-phone")
        # Dates through Intl in the page language: zh-CN writes y/m/d.
        await page.goto(gateway.base_url + "/admin#audit")
        first = page.locator("#audit-table tbody tr td").first
        await expect(first).to_have_text(re.compile(r"^\d{4}/\d{1,2}/\d{1,2} \d{1,2}:\d{2}:\d{2}$"))
        # The language menu switches to English (cd_lang cookie) and back.
        await page.select_option(".topbar .lang-menu", "en")
        await expect(page.locator("nav.admin-nav a").first).to_have_text("Agents & roles")
        await expect(first).to_have_text(re.compile(r"^\d{1,2}/\d{1,2}/\d{2}, "))
        # Governance sections follow the chosen language too, not the browser's (zh-CN).
        await page.goto(gateway.base_url + "/admin#alerts")
        await expect(page.locator("main h1")).to_have_text("Alerts")
        await expect(page.locator("#alert-rules-form h2")).to_have_text("Alert rules")
        assert page.js_errors == []  # type: ignore[attr-defined]
    finally:
        await ctx.close()


async def test_plurals_come_from_i18next(browser, gateway):
    """'1 seconds' is gone: i18next picks the plural form of the page language."""
    ctx, page = await new_page(browser, locale="en-US")
    try:
        await page.goto(gateway.base_url + "/console")
        await expect(page.locator("form.login")).to_be_visible()
        say = "(n) => CipherdeskI18n.t('common.too_many_attempts', { count: n })"
        assert await page.evaluate(say, 1) == "Too many attempts. Try again in 1 second."
        assert await page.evaluate(say, 30) == "Too many attempts. Try again in 30 seconds."
        await page.goto(gateway.base_url + "/console?lang=zh-CN")
        await expect(page.locator("form.login")).to_be_visible()
        assert await page.evaluate(say, 1) == "尝试次数过多，请 1 秒后再试。"
    finally:
        await ctx.close()
