"""The privacy notice in real Chromium, in Chinese and English (issue 15.3).

1. A tenant requires consent: the widget shows the notice in the customer's language
   before the pre-chat form can be sent; after "I agree" the chat starts and the first
   message is stored (the gateway recorded the consent first).
2. A chat opened while no consent was required; the tenant then requires it: the next
   message is refused by the gateway (``consent_required``), the widget says so, shows the
   notice again and keeps the message; after "I agree" the message is sent and stored.
"""

from __future__ import annotations

import pytest

from tests.e2e import browser as bx
from tests.e2e.browser import customer_says, expect, login_console, new_page, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway

NOTICE = {
    "zh-CN": "我们仅为回答您的问题处理聊天内容，保存 90 天。",
    "en": "We process this chat only to answer your question and keep it for 90 days.",
}
TEXT = {
    "en-US": {
        "notice": NOTICE["en"],
        "title": "Privacy notice",
        "agree": "I agree",
        "needed": "Please accept the privacy notice first",
        "waiting": "Sent, waiting for an agent",
    },
    "zh-CN": {
        "notice": NOTICE["zh-CN"],
        "title": "隐私声明",
        "agree": "我已阅读并同意",
        "needed": "请先同意隐私声明",
        "waiting": "已发送，等待客服接入",
    },
}


async def publish(gw: bx.Gateway, required: bool) -> int:
    assert gw.svc.chats.notices is not None
    notice = await gw.svc.chats.notices.publish(
        "demo", dict(NOTICE), required, actor="test", ip="127.0.0.1"
    )
    return notice.version


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
async def test_notice_before_the_first_message_and_the_gateway_refusal(browser, gateway, locale):
    text = TEXT[locale]
    await publish(gateway, required=True)
    ctx, customer = await new_page(browser, locale=locale)
    try:
        await customer.goto(gateway.base_url + "/demo")
        await customer.click("#cipherdesk-widget >> .launcher")
        notice = customer.locator(".privacy")
        await expect(notice.locator("h3")).to_have_text(text["title"])
        await expect(notice.locator(".notice-text")).to_have_text(text["notice"])
        start = customer.locator(".prechat button[type=submit]")
        await expect(start).to_be_disabled()
        await screenshot(customer, f"widget-privacy-notice-{locale}")

        await notice.locator("button.agree").click()
        await expect(start).to_be_enabled()
        await expect(notice.locator("button.agree")).to_be_hidden()
        await customer.fill("#cdw-name", "Ada")
        await start.click()
        await expect(notice).to_be_hidden()  # read and accepted: the chat takes the space
        await customer_says(customer, "hello after agreeing")
        first = customer.locator(".msg.me").first
        await expect(first.locator(".tick")).to_have_attribute("title", text["waiting"])
        chat_id = await customer.evaluate(
            "() => JSON.parse(localStorage.getItem('cipherdesk:demo')).chat"
        )
        chat = await gateway.svc.store.get_chat(chat_id)
        assert chat is not None
        consent = await gateway.svc.chats.consent_of(chat)
        assert consent is not None and consent.version >= 1
        assert customer.js_errors == []  # type: ignore[attr-defined]
    finally:
        await ctx.close()


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
async def test_consent_required_mid_chat_is_refused_then_sent_after_agreeing(
    browser, gateway, locale
):
    text = TEXT[locale]
    await publish(gateway, required=False)
    ctx, customer = await new_page(browser, locale=locale)
    try:
        await customer.goto(gateway.base_url + "/demo")
        await customer.click("#cipherdesk-widget >> .launcher")
        await expect(customer.locator(".privacy .notice-text")).to_have_text(text["notice"])
        await expect(customer.locator(".privacy button.agree")).to_be_hidden()
        await customer.fill("#cdw-name", "Bo")
        await customer.click(".prechat button[type=submit]")
        await customer_says(customer, "first, no consent needed")
        first = customer.locator(".msg.me").first
        await expect(first.locator(".tick")).to_have_attribute("title", text["waiting"])

        await publish(gateway, required=True)
        await customer_says(customer, "second, after the tenant changed its notice")
        await expect(customer.locator(".alert")).to_contain_text(text["needed"])
        notice = customer.locator(".privacy")
        await expect(notice.locator("button.agree")).to_be_visible()
        second = customer.locator(".msg.me").nth(1)
        await expect(second).to_have_attribute("data-state", "sending")  # kept, not lost
        await screenshot(customer, f"widget-consent-refused-{locale}")

        await notice.locator("button.agree").click()
        await expect(second.locator(".tick")).to_have_attribute("title", text["waiting"])
        await expect(customer.locator(".alert")).to_be_hidden()
        assert customer.js_errors == []  # type: ignore[attr-defined]
    finally:
        await ctx.close()


ADMIN = {
    "en-US": {"published": "Privacy notice published.", "current": "Current: version"},
    "zh-CN": {"published": "隐私声明已发布。", "current": "当前：第"},
}


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
async def test_an_admin_publishes_a_notice_from_the_admin_page(browser, gateway, locale):
    email = f"notice-admin-{locale.lower()}@example.com"
    await gateway.agent(email, role="admin")
    ctx, admin = await new_page(browser, locale=locale)
    try:
        await login_console(admin, gateway, email, path="/admin")
        await admin.click("nav a[href='#tenant']")
        await admin.fill("#notice-zh", NOTICE["zh-CN"])
        await admin.fill("#notice-en", NOTICE["en"])
        await admin.check("#notice-required")
        await admin.click("#notice-form button[type=submit]")
        await expect(admin.locator("#toasts")).to_contain_text(ADMIN[locale]["published"])
        await expect(admin.locator("#notice-status")).to_contain_text(ADMIN[locale]["current"])
        assert gateway.svc.chats.notices is not None
        current = await gateway.svc.chats.notices.current("demo")
        assert current is not None and current.required
        assert current.texts == NOTICE
        await screenshot(admin, f"admin-privacy-notice-{locale}")
        assert admin.js_errors == []  # type: ignore[attr-defined]
    finally:
        await ctx.close()
