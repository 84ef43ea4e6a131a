"""Widget state in real Chromium (English and Chinese): after a transfer and a reload the
header names the agent who has the chat now; the panel reopens expanded, scrolled to the
bottom, with its system notices; the launcher shows an unread badge; a message stored
while no agent has the chat says "sent, waiting for an agent", not "delivered"."""

from __future__ import annotations

import pytest

from tests.e2e import browser as bx
from tests.e2e.browser import (
    agent_says,
    customer_says,
    expect,
    login_console,
    new_page,
    open_widget_form,
    screenshot,
)

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway

TEXT = {
    "en-US": {
        "with_bob": "Chatting with Bob",
        "ana_joined": "Ana joined the chat",
        "ana_left": "Ana left the chat",
        "bob_joined": "Bob joined the chat",
        "hidden": "was hidden",
        "waiting": "Sent, waiting for an agent",
        "delivered": "Delivered",
        "unread": "(1 new message)",
    },
    "zh-CN": {
        "with_bob": "正在与 Bob 聊天",
        "ana_joined": "Ana 加入了会话",
        "ana_left": "Ana 离开了会话",
        "bob_joined": "Bob 加入了会话",
        "hidden": "已被隐藏",
        "waiting": "已发送，等待客服接入",
        "delivered": "已送达",
        "unread": "（1 条新消息）",
    },
}


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
async def test_widget_state_survives_transfer_and_reload(browser, gateway, locale):
    text = TEXT[locale]
    await gateway.agent("ana@example.com", name="Ana")
    bob_id = await gateway.agent("bob@example.com", name="Bob")
    ctx_a, ana = await new_page(browser)
    ctx_b, bob = await new_page(browser)
    ctx_c, customer = await new_page(browser, locale=locale)
    try:
        await login_console(ana, gateway, "ana@example.com")
        await login_console(bob, gateway, "bob@example.com")
        await open_widget_form(customer, gateway, name="Ada", topic=None)

        # Stored while nobody has the chat: not "delivered" yet.
        await customer_says(customer, "anyone there?")
        first = customer.locator(".msg.me").first
        await expect(first.locator(".tick")).to_have_attribute("title", text["waiting"])
        await ana.locator(".queue-item button.primary").click()
        await expect(first.locator(".tick")).to_have_attribute("title", text["delivered"])

        await customer_says(customer, "my card is 4111 1111 1111 1111")  # masked + notice
        await expect(customer.locator(".sys.notice")).to_contain_text(text["hidden"])
        for i in range(12):
            await agent_says(ana, f"Ana, line {i}")
        await expect(customer.locator(".msg.agent")).to_have_count(12)

        pane = ana.locator(".chat-pane:not([hidden])")
        await pane.locator(".chat-actions button").first.click()
        await pane.locator("select.transfer-target").select_option(f"agent:{bob_id}")
        await pane.locator("form.transfer button[type=submit]").click()
        await expect(customer.locator(".status")).to_have_text(text["with_bob"])

        await customer.reload()
        # Reopened, showing the agent who has the chat now, scrolled to the end.
        await expect(customer.locator("#cdw-panel")).to_be_visible()
        await expect(customer.locator(".status")).to_have_text(text["with_bob"])
        await expect(customer.locator(".msg.agent")).to_have_count(12)
        log = customer.locator(".log")
        # The notices come back in place, between the replayed messages.
        sys_lines = await log.locator(".sys").all_inner_texts()
        for want in (text["ana_joined"], text["hidden"], text["ana_left"], text["bob_joined"]):
            assert any(want in line for line in sys_lines), (want, sys_lines)
        order = await log.evaluate("""(el) => [...el.children].map((c) =>
            c.classList.contains('sys') ? 'sys:' + c.textContent
              : 'msg:' + c.querySelector('.text').textContent)""")
        joined = next(i for i, x in enumerate(order) if text["ana_joined"] in x)
        left = next(i for i, x in enumerate(order) if text["ana_left"] in x)
        last_ana = max(i for i, x in enumerate(order) if "Ana, line 11" in x)
        assert joined < order.index("msg:anyone there?") or joined < last_ana
        assert left > last_ana  # the transfer came after Ana's last line
        at_bottom = await log.evaluate(
            "(el) => el.scrollTop + el.clientHeight >= el.scrollHeight - 2"
        )
        assert at_bottom
        await screenshot(customer, f"widget-after-reload-{locale}")

        # Closed panel: a new reply shows the unread badge on the launcher.
        await customer.keyboard.press("Escape")
        await expect(customer.locator("#cdw-panel")).to_be_hidden()
        await agent_says(bob, "Bob here")
        badge = customer.locator(".launcher .badge")
        await expect(badge).to_be_visible()
        await expect(badge).to_have_text("1")
        label = await customer.locator(".launcher").get_attribute("aria-label")
        assert label is not None and text["unread"] in label
        await customer.locator(".launcher").click()
        await expect(badge).to_be_hidden()
        assert customer.js_errors == []  # type: ignore[attr-defined]
    finally:
        await ctx_a.close()
        await ctx_b.close()
        await ctx_c.close()
