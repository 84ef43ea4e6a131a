"""Real consoles follow the queue from ``queue_update`` frames (console.js ``onQueueUpdate``):
a new waiting chat appears, a chat a colleague accepts leaves the waiting list and
appears among the colleague's chats. One console in Chinese, one in English."""

from __future__ import annotations

import pytest

from gateway.sdk.client import CustomerClient
from tests.e2e import browser as bx
from tests.e2e.browser import expect, login_console, new_page

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway


async def test_consoles_follow_the_queue_through_updates(browser, gateway):
    await gateway.agent("ana@example.com", name="Ana")
    await gateway.agent("ben@example.com", name="Ben")
    ctx_a, ana = await new_page(browser, locale="zh-CN")
    ctx_b, ben = await new_page(browser, locale="en-US")
    key = gateway.svc.identity.verify_key_b64
    base = gateway.base_url
    customers = [CustomerClient(base, "demo", origin=base, gateway_key=key) for _ in range(2)]
    try:
        await login_console(ana, gateway, "ana@example.com")
        await login_console(ben, gateway, "ben@example.com")
        await expect(ana.locator("li.none", has_text="没有等待中的客户。")).to_be_visible()
        await expect(ben.locator("li.none", has_text="Nobody is waiting.")).to_be_visible()

        await customers[0].connect()
        await customers[0].open(profile={"name": "Carl"})
        for page in (ana, ben):  # a new waiting chat: one entry added
            await expect(page.locator(".queue-item")).to_have_count(1)
            await expect(page.locator(".queue-item strong")).to_have_text("Carl")

        await ben.locator(".queue-item button", has_text="Accept").click()
        # Ben took it: it leaves Ana's waiting list ("gone") and becomes one of Ben's chats.
        await expect(ana.locator(".queue-item")).to_have_count(0)
        await expect(ana.locator("li.none", has_text="没有等待中的客户。")).to_be_visible()
        await expect(ben.locator(".queue-item")).to_have_count(0)
        await expect(ben.locator(".tab-name", has_text="Carl")).to_be_visible()

        await customers[1].connect()
        await customers[1].open(profile={"name": "Dora"})
        for page in (ana, ben):
            await expect(page.locator(".queue-item strong")).to_have_text(["Dora"])
        await expect(ana.locator(".queue-item button")).to_have_text("接入")
    finally:
        for customer in customers:
            await customer.aclose()
        await ctx_a.close()
        await ctx_b.close()
