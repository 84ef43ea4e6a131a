"""Real browser: an agent's reply written in the helpdesk (the inbound plugin API, signed
like a Zendesk webhook) appears in the customer's widget with the helpdesk agent's
name, masked by the tenant's policy (issue 17, "Done when")."""

from __future__ import annotations

import json
import time

import aiohttp
import pytest

from plugins.webhook import signature_header
from tests.e2e import browser as bx
from tests.e2e.browser import expect, new_page, open_widget_form

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway

SECRET = "inbound-browser-Zq8LrT2vN5xK9pW3"


async def test_helpdesk_reply_appears_in_the_widget(browser, gateway):
    svc = gateway.svc
    # Configured without outbound events reaching anything: the webhook plugin points at a
    # closed loopback port under the operator's allowance; only its inbound API matters.
    await svc.plugins.configure(
        "demo",
        "webhook",
        {
            "url": "http://127.0.0.1:9/unused",
            "secret": "outbound-secret-123",
            "events": ["chat.closed"],
            "inbound_secret": SECRET,
        },
        allow_private=True,
    )
    tenant = await svc.store.get_tenant("demo")
    tenant.settings = {**tenant.settings, "policy": {"actions": {"email": "mask"}}}
    await svc.store.update_tenant(tenant)
    svc.tenants.invalidate("demo")
    ctx, page = await new_page(browser)
    try:
        # No console agent is online: the helpdesk side answers.
        await open_widget_form(page, gateway, name="Mei")
        await expect(page.locator(".status")).to_have_text("No agent online right now")
        [chat] = [c for c in await svc.store.list_chats("demo") if c.state != "closed"]
        raw = json.dumps(
            {
                "action": "reply",
                "chat": chat.id,
                "id": "fd-note-1",
                "agent_name": "Wang Fang",
                "text": "Hello Mei, write to refunds@example.com please.",
            }
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Cipherdesk-Signature": signature_header([SECRET], int(time.time()), raw),
        }
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{gateway.base_url}/api/inbound/demo/webhook", data=raw, headers=headers
            ) as r,
        ):
            assert r.status == 200, await r.text()
        bubble = page.locator(".msg.agent .text")
        await expect(bubble).to_have_count(1)
        text = await bubble.first.text_content()
        assert text.startswith("Hello Mei, write to ") and "refunds@example.com" not in text
        assert "@example.com" in text  # masked, not dropped
        await expect(page.locator(".log")).to_contain_text("Wang Fang")
        assert page.js_errors == []  # type: ignore[attr-defined]
    finally:
        await ctx.close()


async def _inbound(gateway, body: dict) -> dict:
    raw = json.dumps(body).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Cipherdesk-Signature": signature_header([SECRET], int(time.time()), raw),
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{gateway.base_url}/api/inbound/demo/webhook", data=raw, headers=headers) as r,
    ):
        assert r.status == 200, await r.text()
        return await r.json()


async def test_helpdesk_note_and_handled_show_in_the_console_only(browser, gateway):
    """A private helpdesk note appears in the agent's console, tagged, and never in the
    widget; "handled" shows in the console and leaves the customer's chat open."""
    svc = gateway.svc
    await svc.plugins.configure(
        "demo",
        "webhook",
        {
            "url": "http://127.0.0.1:9/unused",
            "secret": "outbound-secret-123",
            "events": ["chat.closed"],
            "inbound_secret": SECRET,
        },
        allow_private=True,
    )
    await gateway.agent("ana@example.com", name="Ana")
    ctx_a, ana = await new_page(browser)
    ctx_c, customer = await new_page(browser)
    try:
        await bx.login_console(ana, gateway, "ana@example.com")
        await bx.open_widget(customer, gateway, name="Carl")
        await ana.locator(".queue-item button", has_text="Accept").click()
        pane = ana.locator(".chat-pane:not([hidden])")
        await expect(customer.locator(".log")).to_contain_text("Ana")
        [chat] = [c for c in await svc.store.list_chats("demo") if c.state != "closed"]
        note = "Customer is on the legacy plan, offer the upgrade"
        answer = await _inbound(
            gateway,
            {
                "action": "comment",
                "public": "false",
                "chat": chat.id,
                "id": "c-1",
                "text": note,
                "agent_name": "Wang Fang",
            },
        )
        assert answer["action"] == "note"
        await expect(pane.locator(".msg.note .text")).to_have_text([note])
        await expect(pane.locator(".msg.note")).to_contain_text("Wang Fang")
        # A public reply sent after the note is the barrier: once it is in the widget,
        # anything the widget would have got before it is there too.
        await _inbound(
            gateway, {"action": "reply", "chat": chat.id, "id": "c-2", "text": "Hello Carl"}
        )
        await expect(customer.locator(".msg.agent .text")).to_have_text(["Hello Carl"])
        assert note not in (await customer.locator("#cipherdesk-widget").inner_text())
        answer = await _inbound(  # the generic dialect: "handled" itself (no status table)
            gateway,
            {"action": "handled", "status": "Solved", "chat": chat.id, "agent_name": "Wang Fang"},
        )
        assert answer["action"] == "handled"
        await expect(pane.locator(".sys.handled")).to_contain_text("Wang Fang")
        await expect(ana.locator(".tab .tag", has_text="Handled in helpdesk")).to_be_visible()
        await bx.customer_says(customer, "still there?")
        await expect(pane.locator(".msg.them .text")).to_contain_text(["still there?"])
        assert ana.js_errors == [] and customer.js_errors == []  # type: ignore[attr-defined]
    finally:
        for ctx in (ctx_a, ctx_c):
            await ctx.close()
