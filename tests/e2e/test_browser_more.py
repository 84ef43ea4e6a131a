"""More real-browser tests: recovery-code login, supervisor flags (original text,
audited), and the admin page's plugin settings and dead-letter replay."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import web

from gateway.sdk.client import CustomerClient
from gateway.store.base import PolicyFlag
from plugins.webhook import verify_signature
from tests.e2e import browser as bx
from tests.e2e.browser import (
    customer_says,
    expect,
    login_console,
    new_page,
    open_widget,
)
from tests.gateway.helpers import serve_app

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway

FRAUD = "please wire the money to my other account"
WEBHOOK_SECRET = "whsec-browser-test-0123456789abcdef"


async def _eventually(predicate: Any, within: float = 8.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _submit_login(page: Any, gw: bx.Gateway, email: str, otp: str) -> None:
    await page.goto(gw.base_url + "/console")
    await page.fill("#login-email", email)
    await page.fill("#login-password", gw.passwords[email])
    await page.fill("#login-otp", otp)
    await page.click("form.login button[type=submit]")


async def _me_status(page: Any) -> int:
    return await page.evaluate(
        "async () => (await fetch('/api/me', {credentials: 'same-origin'})).status"
    )


async def test_recovery_code_login_is_single_use(browser, gateway):
    email = "rhea@example.com"
    agent_id = await gateway.agent(email, name="Rhea")
    agent = await gateway.svc.store.get_agent(agent_id)
    codes = await gateway.svc.logins.regenerate_recovery_codes(agent, actor="test")
    code = codes[0]

    ctx1, first = await new_page(browser)
    ctx2, second = await new_page(browser)
    try:
        # Lost phone: the recovery code goes into the one-time-code field and works.
        await _submit_login(first, gateway, email, code)
        await expect(first.locator(".topbar")).to_be_visible()
        await expect(first.locator(".who")).to_contain_text("Rhea")
        assert await _me_status(first) == 200

        # The same code a second time (fresh browser, no cookie) is refused.
        await _submit_login(second, gateway, email, code)
        error = second.locator("form.login .form-error")
        await expect(error).to_be_visible()
        await expect(error).to_contain_text("Login failed")
        await expect(second.locator(".topbar")).to_have_count(0)
        await expect(second.locator("#login-otp")).to_have_value("")
        assert await _me_status(second) == 401
        assert not [c for c in await ctx2.cookies() if c["value"]], "no session cookie"

        used = await gateway.svc.store.query_audit(tenant_id="demo", action="recovery_code.used")
        assert [e.actor for e in used] == [agent_id]
        assert await gateway.svc.store.count_recovery_codes(agent_id) == len(codes) - 1
        assert first.js_errors == []
        # the refused login logs "401 (Unauthorized)" for /api/login, nothing else
        assert second.js_errors == []
    finally:
        await ctx1.close()
        await ctx2.close()


async def test_supervisor_flag_original_is_audited(browser, gateway):
    svc = gateway.svc
    tenant = await svc.store.get_tenant("demo")
    tenant.settings["policy"] = {
        "keywords": [{"term": "wire the money", "category": "fraud", "action": "flag"}]
    }
    await svc.store.update_tenant(tenant)
    svc.tenants.invalidate("demo")

    await gateway.agent("ana@example.com", name="Ana")
    sue_id = await gateway.agent("sue@example.com", role="supervisor", name="Sue")
    ctx_a, ana = await new_page(browser)
    ctx_s, sue = await new_page(browser)
    ctx_c, customer = await new_page(browser)
    try:
        await login_console(ana, gateway, "ana@example.com")
        await login_console(sue, gateway, "sue@example.com")
        flags = sue.locator("ul[aria-label='Flagged messages']")
        await expect(flags.locator(".none")).to_have_text("No flagged messages.")

        await open_widget(customer, gateway, name="Carl")
        await ana.locator(".queue-item button", has_text="Accept").click()
        await customer_says(customer, FRAUD)

        # The flagged message reaches the supervisor's flags list live.
        item = flags.locator(".flag-item")
        await expect(item).to_have_count(1)
        original = item.locator(".original")
        await expect(original).to_be_hidden()
        assert await svc.store.query_audit(tenant_id="demo", action="flag.original_viewed") == []
        await item.locator("button", has_text="Show original").click()
        await expect(original).to_be_visible()
        await expect(original).to_have_text(FRAUD)
        await expect(item.locator("button")).to_have_text("Shown (audited)")

        viewed = await svc.store.query_audit(tenant_id="demo", action="flag.original_viewed")
        assert len(viewed) == 1
        assert viewed[0].actor == sue_id
        assert viewed[0].details["flag_id"] == int(await item.get_attribute("data-flag"))

        # A plain agent's console has no flags list and no original text anywhere,
        # and the API refuses her too.
        await expect(ana.locator("#flags")).to_have_count(0)
        await expect(ana.locator("ul[aria-label='Flagged messages']")).to_have_count(0)
        await expect(ana.locator(".flag-item, .original")).to_have_count(0)
        status = await ana.evaluate(
            "async (id) => (await fetch('/api/flags/' + id + '/original')).status",
            await item.get_attribute("data-flag"),
        )
        assert status == 403
        status = await ana.evaluate("async () => (await fetch('/api/flags')).status")
        assert status == 403
        assert (
            len(await svc.store.query_audit(tenant_id="demo", action="flag.original_viewed")) == 1
        )
        assert sue.js_errors == []
        # Ana's page logged exactly the two refused fetches made above.
        assert all("403" in e for e in ana.js_errors), ana.js_errors
    finally:
        for ctx in (ctx_a, ctx_s, ctx_c):
            await ctx.close()


class Receiver:
    """A local webhook receiver; answers ``status`` and records what it accepted."""

    def __init__(self) -> None:
        self.status = 400
        self.seen: list[tuple[int, bool, dict[str, Any]]] = []
        self.port = 0  # known once started (the kernel picks it)
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        valid = verify_signature(
            WEBHOOK_SECRET, request.headers.get("X-Cipherdesk-Signature", ""), body
        )
        self.seen.append((self.status, valid, json.loads(body)))
        return web.Response(status=self.status)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self.runner, self.port = await serve_app(app)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def accepted(self) -> list[dict[str, Any]]:
        return [event for status, valid, event in self.seen if status == 200 and valid]


async def test_admin_plugin_settings_and_dead_letter_replay(browser, gateway):
    svc = gateway.svc
    # The receiver listens on 127.0.0.1: the operator's private-target allowance
    # ([plugins] allow_private_targets) is on for this gateway.
    svc.plugins.allow_private_targets = True
    await gateway.agent("root@example.com", role="admin", name="Rita Root")
    receiver = Receiver()
    await receiver.start()
    ctx, admin = await new_page(browser)
    customer: CustomerClient | None = None
    try:
        await login_console(admin, gateway, "root@example.com", path="/admin#plugins")
        form = admin.locator("form.plugin-form[data-plugin='webhook']")
        await expect(form.locator(".plugin-state")).to_have_text("not configured")
        await expect(form.locator(".secret-state[data-secret='secret']")).to_have_text("Not set.")

        # Not configured means not enabled: the box is not ticked (it used to be).
        await expect(admin.locator("#plugin-webhook-enabled")).not_to_be_checked()
        # Configure the webhook through the page.
        await admin.check("#plugin-webhook-enabled")
        await admin.fill("#plugin-webhook-url", receiver.url)
        await admin.fill("#plugin-webhook-secret", WEBHOOK_SECRET)
        await form.locator("button[type=submit]").click()
        await expect(admin.locator("#toasts")).to_contain_text("Plugin webhook saved")
        form = admin.locator("form.plugin-form[data-plugin='webhook']")
        await expect(form.locator(".plugin-state")).to_have_text("enabled")
        await expect(form.locator(".secret-state[data-secret='secret']")).to_contain_text("is set")
        await expect(admin.locator("#plugin-webhook-url")).to_have_value(receiver.url)

        # The secret is never displayed: not in an input, not in the page, not after reload.
        for _ in range(2):
            await expect(admin.locator("#plugin-webhook-secret")).to_have_value("")
            assert WEBHOOK_SECRET not in await admin.content()
            values = await admin.eval_on_selector_all(
                "input, textarea", "els => els.map(e => e.value)"
            )
            assert WEBHOOK_SECRET not in values
            await admin.reload()
            await expect(
                admin.locator("form.plugin-form[data-plugin='webhook'] .plugin-state")
            ).to_have_text("enabled")
        stored = await svc.store.get_plugin_config("demo", "webhook")
        assert stored is not None and stored.enabled
        assert stored.config["url"] == receiver.url
        assert WEBHOOK_SECRET not in json.dumps(stored.config)
        audit = await svc.store.query_audit(tenant_id="demo", action="plugin.configured")
        assert len(audit) == 1 and WEBHOOK_SECRET not in json.dumps(audit[0].details)

        # A customer opens a chat; the receiver answers 400 → permanent error → dead letter.
        customer = CustomerClient(
            gateway.base_url,
            "demo",
            origin=gateway.base_url,
            gateway_key=svc.identity.verify_key_b64,
        )
        await customer.connect()
        chat = (await customer.open(profile={"name": "Dee"})).chat

        async def dead() -> list[Any]:
            return await svc.store.list_events(tenant_id="demo", state="dead")

        await _eventually(lambda: _nonempty(dead()), what="a dead letter")
        (item,) = await dead()
        assert receiver.seen and receiver.seen[0][0] == 400 and receiver.seen[0][1]

        # The page lists it (never its payload) and replays it once the receiver is fixed.
        await admin.reload()
        row = admin.locator(f"#dead-table tbody tr[data-dead='{item.id}']")
        await expect(row).to_contain_text(item.event_type)
        await expect(row).to_contain_text("HTTP 400")
        assert "Dee" not in await admin.locator("#dead-table").text_content()
        receiver.status = 200
        await row.locator("button", has_text="Replay").click()
        await expect(admin.locator("#toasts")).to_contain_text(f"Dead letter {item.id} replayed")
        await expect(row).to_have_count(0)
        await expect(admin.locator("#dead-table tbody")).to_contain_text("No dead letters.")

        async def arrived() -> bool:
            return any(
                e.get("type") == item.event_type and e.get("chat_id") == chat
                for e in receiver.accepted()
            )

        await _eventually(arrived, what="the replayed event at the receiver")
        assert await dead() == []
        replayed = await svc.store.query_audit(tenant_id="demo", action="plugin.dead_replayed")
        assert [e.target for e in replayed] == [str(item.id)]
        assert admin.js_errors == []
    finally:
        if customer is not None:
            await customer.aclose()
        await ctx.close()
        await receiver.stop()


async def _nonempty(coro: Any) -> bool:
    return bool(await coro)


async def test_supervisors_page_through_older_flags(browser, gateway):
    """A console lists the newest 100 flags and loads older ones on request: customers
    make flags, so a console that asked for all of them could be made to freeze."""
    svc = gateway.svc
    opened = await svc.chats.open_chat("demo")
    for seq in range(1, 106):
        await svc.store.add_flag(PolicyFlag(opened.chat.id, "demo", seq, ["card"], b"o", 1.0))
    total = len(await svc.store.list_flags("demo", limit=10_000))
    await gateway.agent("sia@example.com", role="supervisor", name="Sia")
    await gateway.agent("sol@example.com", role="supervisor", name="Sol")
    ctx_zh, sia = await new_page(browser, locale="zh-CN")
    ctx_en, sol = await new_page(browser, locale="en-US")
    try:
        await login_console(sia, gateway, "sia@example.com")
        await login_console(sol, gateway, "sol@example.com")
        await expect(sol.locator(".flag-item")).to_have_count(100)
        await expect(sol.locator("li.more button")).to_have_text("Show older flagged messages")
        await expect(sia.locator(".flag-item")).to_have_count(100)
        older = sia.locator("li.more button")
        await expect(older).to_have_text("显示更早的被标记消息")
        await older.click()
        await expect(sia.locator(".flag-item")).to_have_count(total)
        await expect(sia.locator("li.more")).to_have_count(0)
        assert sia.js_errors == [] and sol.js_errors == []
    finally:
        await ctx_zh.close()
        await ctx_en.close()
