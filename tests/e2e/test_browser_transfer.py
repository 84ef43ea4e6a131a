"""The console's transfer picker in real Chromium, in English and Chinese: online agents
and queues with their load; a refused transfer shows a clear error and the console
stays connected (regression: it used to be a silent 1008 close of the agent socket)."""

from __future__ import annotations

import pytest

from tests.e2e import browser as bx
from tests.e2e.browser import expect, login_console, new_page, open_widget_form, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway

TEXT = {
    "en-US": {
        "accept": "Accept",
        "transfer": "Transfer…",
        "online": "Online",
        "bob": "Bob — online · 0 chats",
        "offline": "That agent is not online.",
        "carol": "Carol — offline",
        "queue": "Queue default · 0 waiting",
        "moved": "Chat transferred",
    },
    "zh-CN": {
        "accept": "接入",
        "transfer": "转接…",
        "online": "在线",
        "bob": "Bob — 在线 · 0 个会话",
        "offline": "这位客服不在线。",
        "carol": "Carol — 离线",
        "queue": "队列 default · 0 人等待",
        "moved": "会话已转接",
    },
}


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
async def test_transfer_picker_and_refusal(browser, gateway, locale):
    text = TEXT[locale]
    await gateway.agent("ana@example.com", name="Ana")
    bob_id = await gateway.agent("bob@example.com", name="Bob")
    carol_id = await gateway.agent("carol@example.com", name="Carol")
    ctx_a, ana = await new_page(browser, locale=locale)
    ctx_b, bob = await new_page(browser, locale=locale)
    ctx_c, customer = await new_page(browser, locale=locale)
    try:
        await login_console(ana, gateway, "ana@example.com")
        await login_console(bob, gateway, "bob@example.com")
        await expect(bob.locator(".pill[role=status]")).to_have_text(text["online"])
        await open_widget_form(customer, gateway, name="Ada", topic=None)
        await ana.locator(".queue-item button", has_text=text["accept"]).click()
        pane = ana.locator(".chat-pane:not([hidden])")
        await pane.locator("button", has_text=text["transfer"]).click()
        picker = pane.locator("select.transfer-target")
        await expect(picker).to_be_focused()
        await expect(picker.locator(f"option[value='agent:{bob_id}']")).to_have_text(text["bob"])
        carol = picker.locator(f"option[value='agent:{carol_id}']")
        await expect(carol).to_have_text(text["carol"])
        await expect(carol).to_be_disabled()
        await expect(picker.locator("option[value='queue:default']")).to_have_text(text["queue"])
        await screenshot(ana, f"console-transfer-{locale}")

        # Bob closes his console after the list was loaded: the gateway refuses.
        await picker.select_option(f"agent:{bob_id}")
        await ctx_b.close()
        await pane.locator("form.transfer button[type=submit]").click()
        error = pane.locator(".transfer-error")
        await expect(error).to_have_text(text["offline"])
        # still connected
        await expect(ana.locator(".pill[role=status]")).to_have_text(text["online"])
        # Back to the queue works.
        await picker.select_option("queue:default")
        await pane.locator("form.transfer button[type=submit]").click()
        await expect(pane.locator(".log")).to_contain_text(text["moved"])
        await expect(pane.locator("form.transfer")).to_be_hidden()
        assert ana.js_errors == []  # type: ignore[attr-defined]
    finally:
        await ctx_a.close()
        await ctx_c.close()
