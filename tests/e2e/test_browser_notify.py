"""Console notifications in real Chromium: beep, unread count in the title, desktop
notifications for new chats and messages (without message text), settings kept in
localStorage.

The operating system's notification centre and speakers cannot be observed from a test:
an init script records ``new Notification(...)`` calls (permission granted) and counts
oscillators the page starts; everything else is the real page."""

from __future__ import annotations

import re

import pytest

from tests.e2e import browser as bx
from tests.e2e.browser import (
    customer_says,
    expect,
    login_console,
    new_page,
    open_widget_form,
)

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway

RECORD = """
window.__notes = []; window.__beeps = 0;
class RecordedNotification {
  constructor(title, options) { window.__notes.push({ title, body: (options || {}).body || '' }); }
  close() {}
  static get permission() { return 'granted'; }
  static requestPermission() { return Promise.resolve('granted'); }
}
window.Notification = RecordedNotification;
const createOscillator = AudioContext.prototype.createOscillator;
AudioContext.prototype.createOscillator = function () {
  window.__beeps += 1; return createOscillator.call(this);
};
// The console is "in the background" for this test.
document.hasFocus = () => false;
"""


async def test_console_notifications_in_chinese(browser, gateway):
    await gateway.agent("ana@example.com", name="Ana")
    ctx_a, ana = await new_page(browser, locale="zh-CN")
    await ctx_a.add_init_script(RECORD)
    customers = []
    try:
        await login_console(ana, gateway, "ana@example.com")
        await ana.locator("#notify-settings summary").click()
        await expect(ana.locator("#notify-sound")).to_be_checked()
        await expect(ana.locator("#notify-desktop")).not_to_be_checked()
        await ana.locator("#notify-desktop").check()

        async def new_customer(name: str):
            ctx, page = await new_page(browser, locale="zh-CN")
            customers.append(ctx)
            await open_widget_form(page, gateway, name=name, topic=None)
            return page

        ada = await new_customer("Ada")
        await ana.wait_for_function("() => window.__notes.length >= 1")
        assert (await ana.evaluate("window.__notes"))[0]["title"] == "新会话：Ada"
        assert await ana.evaluate("window.__beeps") >= 1

        await ana.locator(".queue-item button.primary").click()
        bo = await new_customer("Bo")
        await ana.wait_for_function("() => window.__notes.length >= 2")
        await ana.locator(".queue-item button.primary").click()  # Bo's chat is now in front
        await expect(ana.locator(".tab.current")).to_contain_text("Bo")

        await customer_says(ada, "我的订单到哪了？")
        await ana.wait_for_function("() => window.__notes.length >= 3")
        note = (await ana.evaluate("window.__notes"))[2]
        assert note["title"] == "Ada 发来新消息"
        assert "订单" not in note["body"]  # no message text on a lock screen
        await expect(ana).to_have_title(re.compile(r"^(\(1\) cipherdesk|💬 1 条新消息)"))

        # Settings persist: sound off survives a reload and silences the next alert.
        await ana.locator("#notify-sound").uncheck()
        await ana.reload()
        await expect(ana.locator(".topbar")).to_be_visible()
        await ana.locator("#notify-settings summary").click()
        await expect(ana.locator("#notify-sound")).not_to_be_checked()
        await expect(ana.locator("#notify-desktop")).to_be_checked()
        await expect(ana.locator(".pill[role=status]")).to_have_class(re.compile(r"\bok\b"))
        await customer_says(bo, "还在吗？")
        # a fresh page: the counters started again at 0
        await ana.wait_for_function("() => window.__notes.length >= 1")
        assert await ana.evaluate("window.__beeps") == 0
        assert ana.js_errors == []  # type: ignore[attr-defined]
    finally:
        for ctx in customers:
            await ctx.close()
        await ctx_a.close()
