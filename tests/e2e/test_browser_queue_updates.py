"""Real consoles follow the queue from ``queue_update`` frames (console.js ``onQueueUpdate``):
a new waiting chat appears, a chat a colleague accepts leaves the waiting list and
appears among the colleague's chats; customers beyond what a queue lists are counted.
One console in Chinese, one in English."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.sdk.client import CustomerClient
from tests.e2e import browser as bx
from tests.e2e.browser import expect, login_console, new_page

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway


@contextlib.asynccontextmanager
async def two_consoles(
    browser: Any, gateway: Any, agents: tuple[str, str], customers: int
) -> AsyncIterator[tuple[Any, Any, list[CustomerClient]]]:
    """Two agents logged in to their consoles, the first in zh-CN and the second in en,
    and ``customers`` customer clients not yet connected; all closed afterwards."""
    for name in agents:
        await gateway.agent(f"{name.lower()}@example.com", name=name)
    ctx_zh, zh = await new_page(browser, locale="zh-CN")
    ctx_en, en = await new_page(browser, locale="en-US")
    key = gateway.svc.identity.verify_key_b64
    base = gateway.base_url
    clients = [CustomerClient(base, "demo", origin=base, gateway_key=key) for _ in range(customers)]
    try:
        await login_console(zh, gateway, f"{agents[0].lower()}@example.com")
        await login_console(en, gateway, f"{agents[1].lower()}@example.com")
        yield zh, en, clients
    finally:
        for client in clients:
            await client.aclose()
        await ctx_zh.close()
        await ctx_en.close()


async def test_consoles_follow_the_queue_through_updates(browser, gateway):
    async with two_consoles(browser, gateway, ("Ana", "Ben"), 2) as (ana, ben, customers):
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


async def test_consoles_count_the_customers_their_queue_does_not_list(browser, gateway):
    """Each queue lists its longest-waiting customers only (``websocket.queue_listed``);
    the consoles say how many more wait, and the next one moves up when one is taken."""
    chats = gateway.svc.chats
    for chat in await gateway.svc.store.list_chats("demo"):  # an earlier test's customers
        await chats.close(chat.id, "demo", by="customer")
    listed, chats.queue_listed = chats.queue_listed, 1
    try:
        async with two_consoles(browser, gateway, ("Cleo", "Dan"), 3) as (cleo, dan, customers):
            await _count_unlisted(cleo, dan, customers)
    finally:
        chats.queue_listed = listed


async def _count_unlisted(cleo: Any, dan: Any, customers: list[CustomerClient]) -> None:
    """Three customers, one listed: both consoles count two more; Dan takes Eve."""
    for customer, name in zip(customers, ("Eve", "Finn", "Gus"), strict=True):
        await customer.connect()
        await customer.open(profile={"name": name})
    await expect(cleo.locator(".queue-item strong")).to_have_text(["Eve"])
    await expect(cleo.locator("li.unlisted")).to_have_text(
        "另有 2 位客户在等待（列表只显示等待最久的客户）。"
    )
    await expect(dan.locator(".queue-item strong")).to_have_text(["Eve"])
    await expect(dan.locator("li.unlisted")).to_have_text(
        "2 more customers are waiting (the list shows those who have waited longest)."
    )
    await expect(dan.locator("h2 .count").first).to_have_text("3")

    await dan.locator(".queue-item button", has_text="Accept").click()
    await expect(cleo.locator(".queue-item strong")).to_have_text(["Finn"])
    await expect(cleo.locator("li.unlisted")).to_have_text(
        "另有 1 位客户在等待（列表只显示等待最久的客户）。"
    )
    await expect(dan.locator("li.unlisted")).to_have_text(
        "1 more customer is waiting (the list shows those who have waited longest)."
    )
    await expect(dan.locator(".tab-name", has_text="Eve")).to_be_visible()
