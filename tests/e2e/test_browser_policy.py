"""Real-browser test of the admin policy section: schema, effective table, keyword lists."""

from __future__ import annotations

import re

import pytest

from tests.e2e import browser as bx
from tests.e2e.browser import expect, login_console, new_page

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway

ACCEPT = {"en": "Accept", "zh-CN": "接入"}


async def test_admin_uploads_keyword_list_and_sees_effective_table(browser, gateway):
    await gateway.agent("policy.admin@example.com", role="admin", name="Pat Policy")
    ctx, admin = await new_page(browser)
    try:
        await login_console(admin, gateway, "policy.admin@example.com", path="/admin")
        await admin.click("nav a[href='#policy']")
        phone = admin.locator("#policy-effective tr[data-kind='phone'] td")
        await expect(phone.nth(4)).to_have_text("mask")  # plugin column
        await expect(phone.nth(7)).to_have_text("never")  # logs
        await expect(admin.locator("#policy-schema")).to_contain_text("builtin_categories")
        # Each setting's meaning in the reader's language only (English here), not both.
        await expect(admin.locator("#policy-schema")).to_contain_text("Opt-in built-in categories")
        schema_text = await admin.locator("#policy-schema").text_content()
        assert re.search(r"[\u4e00-\u9fff]", schema_text) is None, schema_text

        await admin.fill("#keyword-list-name", "vip-words")
        await admin.fill("#keyword-list-text", "暗号词语\tvip\tblock\n")
        await admin.click("#keyword-lists button[type=submit]")
        await expect(admin.locator("#toasts")).to_contain_text("List saved")
        await expect(admin.locator("#keyword-lists tr[data-list='vip-words']")).to_be_visible()
        await admin.fill("#policy-text", "说 暗 號 詞 語")
        await admin.click("#policy-test button[type=submit]")
        await expect(admin.locator("#policy-result .result-action")).to_have_text("block")

        # A bad list is refused with the line number and without its content.
        await admin.fill("#keyword-list-name", "bad")
        await admin.fill("#keyword-list-text", "ok\tvip\nsecret-term-77\tvip\tnuke\n")
        await admin.click("#keyword-lists button[type=submit]")
        error = admin.locator("#toasts")
        await expect(error).to_contain_text(":2:")
        assert "secret-term-77" not in (await error.text_content())

        await admin.click("#keyword-lists tr[data-list='vip-words'] button")
        await expect(admin.locator("#keyword-lists tr[data-list='vip-words']")).to_have_count(0)
        # Only the refused upload's 400 shows up in the console.
        assert [e for e in admin.js_errors if "400" not in e] == []
    finally:
        await ctx.close()


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
async def test_card_number_as_profile_name_is_masked_in_queue_and_header(browser, gateway, lang):
    """Issue 12: a chat whose profile name is a card number shows it masked in the agent's
    queue and in the console's chat header (the webhook payload: test_policy_e2e.py)."""
    card = "4111 1111 1111 1111"
    await gateway.agent(f"ana-{lang}@example.com", name="Ana")
    ctx_a, ana = await new_page(browser, locale=lang)
    ctx_c, customer = await new_page(browser, locale=lang)
    try:
        await login_console(ana, gateway, f"ana-{lang}@example.com")
        await customer.goto(gateway.base_url + "/demo")
        await customer.click("#cipherdesk-widget >> .launcher")
        await customer.fill("#cdw-name", card)
        await customer.click(".prechat button[type=submit]")
        item = ana.locator(".queue-item")
        await expect(item).to_have_count(1)
        await expect(item).to_contain_text("**** **** **** 1111")
        assert card not in (await item.text_content() or "")
        await item.locator("button", has_text=ACCEPT[lang]).click()
        pane = ana.locator(".chat-pane:not([hidden])")
        title = pane.locator(".chat-title")
        await expect(title).to_contain_text("**** **** **** 1111")
        assert card not in (await title.text_content() or "")
        assert card not in (await ana.content())
    finally:
        await ctx_a.close()
        await ctx_c.close()
