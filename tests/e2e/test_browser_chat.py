"""Real-browser tests: customer widget on /demo ⇄ agent console, through the gateway."""

from __future__ import annotations

import json
import re

import pytest

from tests.e2e import browser as bx
from tests.e2e.browser import (
    PHONE,
    agent_says,
    customer_says,
    expect,
    key_frames,
    login_console,
    new_page,
    open_widget,
    screenshot,
)

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway

XSS = "<img src=x onerror=alert(1)>"


async def test_chat_both_ways_transfer_close(browser, gateway):
    """Agent logs in with a real TOTP code; customer chats from /demo; transfer; close."""
    await gateway.agent("ana@example.com", name="Ana")
    bob_id = await gateway.agent("bob@example.com", name="Bob")

    ctx_a, ana = await new_page(browser)
    ctx_b, bob = await new_page(browser)
    ctx_c, customer = await new_page(browser)
    try:
        await login_console(ana, gateway, "ana@example.com")
        await login_console(bob, gateway, "bob@example.com")
        await open_widget(customer, gateway, name="Ada", topic="Billing")

        # The waiting chat shows up in the queue with a ticking waiting time.
        item = ana.locator("ul[aria-label='Waiting chats'] .queue-item")
        await expect(item).to_have_count(1)
        await expect(item).to_contain_text("Ada")
        await expect(item).to_contain_text("Unverified")
        await expect(item.locator(".since")).to_have_text("0:02", timeout=5000)
        await item.locator("button", has_text="Accept").click()

        await expect(customer.locator(".status")).to_have_text("Chatting with Ana")
        await expect(customer.locator(".log")).to_contain_text("Ana joined the chat")

        await customer_says(customer, "Hello, where is my order?")
        pane = ana.locator(".chat-pane:not([hidden])")
        await expect(pane.locator(".msg.them .text")).to_have_text(["Hello, where is my order?"])
        # Delivery tick: the gateway stored (acked) the customer's message.
        await expect(customer.locator(".msg.me").last).to_have_attribute("data-state", "stored")

        await agent_says(ana, "Let me check that for you.")
        await expect(customer.locator(".msg.agent .text")).to_have_text(
            ["Let me check that for you."]
        )
        await expect(pane.locator(".msg.me").last).to_have_attribute("data-state", "stored")

        # Transfer to Bob, picked from the list of online agents.
        await pane.locator("button", has_text="Transfer…").click()
        # The picker lists Bob as online with his load (GET /api/team).
        option = pane.locator(f"select.transfer-target option[value='agent:{bob_id}']")
        await expect(option).to_have_text("Bob — online · 0 chats")
        await pane.locator("select.transfer-target").select_option(f"agent:{bob_id}")
        await pane.locator("form.transfer button[type=submit]").click()
        await expect(pane.locator(".log")).to_contain_text("Chat transferred")
        await expect(customer.locator(".log")).to_contain_text("Bob joined the chat")
        bob_pane = bob.locator(".chat-pane:not([hidden])")
        # Bob sees the history of the chat he took over.
        await expect(bob_pane.locator(".msg.them .text")).to_have_text(
            ["Hello, where is my order?"]
        )
        await agent_says(bob, "Hi, Bob here. It ships tomorrow.")
        await expect(customer.locator(".msg.agent .text")).to_have_text(
            ["Let me check that for you.", "Hi, Bob here. It ships tomorrow."]
        )
        await customer_says(customer, "Great, thanks!")
        await expect(bob_pane.locator(".msg.them .text")).to_have_text(
            ["Hello, where is my order?", "Great, thanks!"]
        )

        await screenshot(bob, "console")
        await bob_pane.locator("button", has_text="Close chat").click()
        await expect(customer.locator(".log")).to_contain_text("The agent ended the chat.")
        await expect(customer.locator(".status")).to_have_text("Chat ended")
        await expect(customer.locator(".rating")).to_be_visible()
        await expect(bob_pane.locator(".log")).to_contain_text("Chat closed")
        for page in (ana, bob, customer):
            assert page.js_errors == [], page.js_errors
    finally:
        for ctx in (ctx_a, ctx_b, ctx_c):
            await ctx.close()


async def test_reload_resumes_without_duplicates(browser, gateway):
    await gateway.agent("ana@example.com", name="Ana")
    ctx_a, ana = await new_page(browser)
    ctx_c, customer = await new_page(browser, PHONE)
    try:
        await login_console(ana, gateway, "ana@example.com")
        # The handshake's key frame is the one frame sent in the clear: the widget asks
        # for no echo of its own messages (it shows them; resumes replay them).
        keys = key_frames(customer)
        await open_widget(customer, gateway, name="Grace")
        assert [(k["echo"], "resume" in k) for k in keys] == [(False, False)]
        await ana.locator(".queue-item button", has_text="Accept").click()
        await expect(customer.locator(".status")).to_have_text("Chatting with Ana")
        # each line read by the other side before it answers, as people take turns: a
        # line sent before the other's arrives is shown after it (a loaded run showed
        # first, third, second), and after a reload in the order stored
        await customer_says(customer, "first")
        await expect(ana.locator(".chat-pane:not([hidden]) .msg .text")).to_have_text(["first"])
        await agent_says(ana, "second")
        await expect(customer.locator(".msg .text")).to_have_text(["first", "second"])
        await customer_says(customer, "third")
        await expect(customer.locator(".msg .text")).to_have_text(["first", "second", "third"])
        await expect(customer.locator(".msg.me").last).to_have_attribute("data-state", "stored")
        await screenshot(customer, "widget-phone")

        # A flaky network between the customer and the gateway, under test control.
        network = {"down": False, "live": []}

        async def relay(ws):
            if network["down"]:
                await ws.close(code=1001, reason="network down")
                return
            network["live"].append((ws, ws.connect_to_server()))

        await customer.route_web_socket(re.compile(r".*/ws/customer.*"), relay)
        await customer.reload()
        # The stored chat reconnects at once and the panel reopens (it was open).
        await expect(customer.locator("#cdw-panel")).to_be_visible()
        await expect(customer.locator(".msg .text")).to_have_text(["first", "second", "third"])
        await expect(customer.locator(".prechat")).to_be_hidden()
        await expect(customer.locator(".status")).to_have_text("Chatting with Ana")
        await customer_says(customer, "after reload")
        # Stored before the agent answers (it may wait for the resume to finish first).
        await expect(customer.locator(".msg.me").last).to_have_attribute("data-state", "stored")
        await agent_says(ana, "still here")
        await expect(customer.locator(".msg .text")).to_have_text(
            ["first", "second", "third", "after reload", "still here"]
        )
        pane = ana.locator(".chat-pane:not([hidden])")
        await expect(pane.locator(".msg .text")).to_have_text(
            ["first", "second", "third", "after reload", "still here"]
        )
        # Connection drops: the message waits (unacked), is re-sent after the automatic
        # reconnect + resume, and arrives exactly once.
        network["down"] = True
        for page_side, server_side in network["live"]:
            await server_side.close(code=1001, reason="gone")
            await page_side.close(code=1001, reason="gone")
        await expect(customer.locator(".status")).to_contain_text("reconnecting")
        await customer_says(customer, "while offline")
        await expect(customer.locator(".msg.me").last).to_have_attribute("data-state", "sending")
        await customer.wait_for_timeout(600)  # a reconnect attempt or two fail meanwhile
        network["down"] = False
        await expect(customer.locator(".msg.me").last).to_have_attribute(
            "data-state", "stored", timeout=20_000
        )
        await expect(pane.locator(".msg .text")).to_have_text(
            ["first", "second", "third", "after reload", "still here", "while offline"]
        )
        await expect(customer.locator(".msg .text")).to_have_text(
            ["first", "second", "third", "after reload", "still here", "while offline"]
        )
        assert len(keys) >= 2 and all(k["echo"] is False for k in keys), keys
        assert all("resume" in k for k in keys[1:])
        # localStorage holds only the resume credentials.
        stored = await customer.evaluate("Object.assign({}, localStorage)")
        assert list(stored) == ["cipherdesk:demo"]
        assert sorted(json.loads(stored["cipherdesk:demo"])) == ["chat", "last_seq", "token"]
        assert customer.js_errors == [] and ana.js_errors == []
    finally:
        await ctx_a.close()
        await ctx_c.close()


async def test_masked_card_and_xss_rendered_as_text(browser, gateway):
    await gateway.agent("ana@example.com", name="Ana")
    ctx_a, ana = await new_page(browser)
    ctx_c, customer = await new_page(browser)
    dialogs: list[str] = []
    for page in (ana, customer):
        page.on("dialog", lambda d: dialogs.append(d.message))
    try:
        await login_console(ana, gateway, "ana@example.com")
        await open_widget(customer, gateway, name="Mallory")
        await ana.locator(".queue-item button", has_text="Accept").click()
        await expect(customer.locator(".status")).to_have_text("Chatting with Ana")

        await customer_says(customer, "my card is 4111 1111 1111 1111")
        notice = customer.locator(".sys.notice")
        await expect(notice).to_contain_text("card")
        pane = ana.locator(".chat-pane:not([hidden])")
        them = pane.locator(".msg.them .text")
        await expect(them).to_have_count(1)
        text = await them.first.text_content()
        assert "4111 1111 1111 1111" not in text and "1111" in text
        # The customer's own bubble shows what was actually delivered.
        await expect(customer.locator(".msg.me .text").first).to_have_text(text)

        await customer_says(customer, XSS)
        await expect(them).to_have_count(2)
        await agent_says(ana, XSS)
        await expect(customer.locator(".msg.agent .text")).to_have_count(1)
        await customer.wait_for_timeout(300)
        assert await them.nth(1).text_content() == XSS
        assert await customer.locator(".msg.agent .text").first.text_content() == XSS
        assert await customer.locator(".msg.me .text").nth(1).text_content() == XSS
        # No element was created from the payload, no dialog fired.
        assert await ana.locator(".log img").count() == 0
        assert await customer.locator(".log img").count() == 0
        assert dialogs == []
        await screenshot(customer, "widget-desktop")
    finally:
        await ctx_a.close()
        await ctx_c.close()


async def test_console_shows_each_reply_once_without_echoes(browser, gateway):
    """The console asks for no echo of its own replies (issue 18): an unchanged reply is
    ticked stored by its ack, a reply the policy masked is rewritten by the one echo that
    still comes, and no reply is shown twice."""
    tenant = await gateway.svc.store.get_tenant("demo")
    tenant.settings = {**tenant.settings, "policy": {"actions": {"phone": {"agent": "mask"}}}}
    await gateway.svc.store.update_tenant(tenant)
    gateway.svc.tenants.invalidate("demo")
    await gateway.agent("ana@example.com", name="Ana")
    ctx_a, ana = await new_page(browser)
    ctx_c, customer = await new_page(browser)
    keys = key_frames(ana)
    try:
        await login_console(ana, gateway, "ana@example.com")
        await open_widget(customer, gateway, name="Ada")
        await ana.locator(".queue-item button", has_text="Accept").click()
        await expect(customer.locator(".status")).to_have_text("Chatting with Ana")
        assert keys and all(k["echo"] is False for k in keys)

        pane = ana.locator(".chat-pane:not([hidden])")
        await agent_says(ana, "On it.")
        await expect(pane.locator(".msg.me").last).to_have_attribute("data-state", "stored")
        await agent_says(ana, "Call us on 13812345678")
        await expect(customer.locator(".msg.agent .text")).to_have_count(2)
        masked = await customer.locator(".msg.agent .text").nth(1).text_content()
        assert "13812345678" not in masked and masked.endswith("5678")
        await expect(pane.locator(".msg.me .text")).to_have_text(["On it.", masked])
        await customer_says(customer, "thanks")  # after both replies in seq order
        await expect(pane.locator(".msg.them .text")).to_have_text(["thanks"])
        await expect(pane.locator(".msg.me .text")).to_have_text(["On it.", masked])
        await expect(pane.locator(".msg.me").last).to_have_attribute("data-state", "stored")
        for page in (ana, customer):
            assert page.js_errors == [], page.js_errors
    finally:
        await ctx_a.close()
        await ctx_c.close()
