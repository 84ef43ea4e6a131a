"""End-to-end mode in real Chromium (issue 13): the widget on /demo (the snippet pins the
tenant key) and agents' consoles with device keys made in the browser, certified by a
tenant key held by the test as an admin would hold it offline."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from crypto.e2e import DeviceCertificate, TenantSigningKey, open_message
from tests.e2e import browser as bx
from tests.e2e.browser import (
    agent_says,
    customer_says,
    expect,
    login_console,
    new_page,
    open_widget,
    screenshot,
)
from tests.e2e.test_browser_a11y import a11y_page, axe_problems

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "crypto" / "e2e_vectors.json").read_text("utf-8")
)


async def _e2e_tenant(gateway: bx.Gateway) -> TenantSigningKey:
    signing = TenantSigningKey.generate()
    tenant = await gateway.svc.store.get_tenant("demo")
    assert tenant is not None
    tenant.settings = {**tenant.settings, "mode": "e2e", "e2e_verify_key": signing.verify_key}
    await gateway.svc.store.update_tenant(tenant)
    gateway.svc.tenants.invalidate("demo")
    return signing


async def _certify_console(
    gateway: bx.Gateway, page: Any, email: str, signing: TenantSigningKey
) -> str:
    """The console registered its device key at login; certify it (as `cipherdesk e2e
    certify` would) and reload: the console now speaks for that device."""
    agent_id = gateway.ids[email]
    pill = page.locator("#e2e-device")
    await expect(pill).to_have_class("pill warn")
    devices = await gateway.svc.store.list_e2e_devices("demo", agent_id)
    (device,) = devices
    agent = await gateway.svc.store.get_agent(agent_id)
    assert agent is not None
    now = int(time.time())
    signed = signing.certify(
        DeviceCertificate(
            tenant="demo",
            agent=agent_id,
            name=agent.display_name,
            role=agent.role,
            device=device.id,
            public_key=device.public_key,
            issued_at=now - 60,
            expires_at=now + 86_400,
        )
    )
    assert await gateway.svc.store.certify_e2e_device(
        device.id, "demo", signed.body, signed.sig, now + 86_400.0
    )
    await page.reload()
    await expect(page.locator("#e2e-device")).to_have_class("pill ok")
    return device.id


MASKED_CARD = "My card is **** **** **** 1111, before anyone joined"
"""What the widget sends of the first message: the default end policy masks the card
before the message is sealed (the gateway could not mask it)."""


async def test_widget_and_consoles_chat_end_to_end(browser, gateway):
    signing = await _e2e_tenant(gateway)
    await gateway.agent("ana@example.com", name="Ana")
    bob_id = await gateway.agent("bob@example.com", name="Bob")
    await gateway.agent("sue@example.com", role="supervisor", name="Sue")
    pages = [await new_page(browser) for _ in range(4)]
    (_, ana), (_, bob), (_, sue), (_, customer) = pages
    try:
        staff = ((ana, "ana@example.com"), (bob, "bob@example.com"), (sue, "sue@example.com"))
        for page, email in staff:
            await login_console(page, gateway, email)
            await _certify_console(gateway, page, email, signing)
        # The private device key is a non-extractable WebCrypto key in IndexedDB.
        assert await ana.evaluate(
            "(id) => CipherdeskE2E.DeviceKey.load(id).then((k) => k.nonExtractable())",
            gateway.ids["ana@example.com"],
        )

        await open_widget(customer, gateway, name="Ada")
        await expect(customer.locator(".e2e-badge")).to_have_text("End-to-end encrypted")
        await customer_says(customer, "My card is 4111 1111 1111 1111, before anyone joined")
        await ana.locator(".queue-item button", has_text="Accept").click()
        await expect(customer.locator(".log")).to_contain_text(
            "Ana can read this chat (verified by the company)"
        )
        pane = ana.locator(".chat-pane:not([hidden])")
        await expect(pane.locator(".msg.them .text")).to_have_text([MASKED_CARD])
        await expect(pane.locator(".e2e-tag")).to_have_text("End-to-end")
        await customer_says(customer, "我的地址是上海市浦东新区世纪大道100号")
        await agent_says(ana, "收到，马上处理")
        await expect(customer.locator(".msg.agent .text")).to_have_text(["收到，马上处理"])
        await expect(pane.locator(".msg.me").last).to_have_attribute("data-state", "stored")
        await expect(customer.locator(".msg.me").last).to_have_attribute("data-state", "stored")

        # Message franking: either end reports a message; the gateway verifies it.
        ana.once("dialog", lambda d: d.accept())
        await pane.locator(".msg.them .report").first.click()
        await expect(pane.locator(".log")).to_contain_text(
            "Reported: the supervisors received the verified message."
        )
        customer.once("dialog", lambda d: d.accept())
        await customer.locator(".msg.agent .report").first.click()
        await expect(customer.locator(".log")).to_contain_text("Report sent")
        flags = await gateway.svc.store.list_flags("demo")
        assert sorted(f.seq for f in flags) == [1, 3] and all(
            f.kinds == ["report:abuse"] for f in flags
        )

        # A supervisor watching is shown to the customer and reads the whole chat.
        active = sue.locator(".queue-item", has_text="Ana")
        await active.locator("button", has_text="Watch").click()
        await expect(customer.locator(".log")).to_contain_text(
            "A supervisor joined and can read this chat: Sue"
        )
        watch_pane = sue.locator(".chat-pane:not([hidden])")
        await expect(watch_pane.locator(".msg .text")).to_have_text(
            [
                MASKED_CARD,
                "我的地址是上海市浦东新区世纪大道100号",
                "收到，马上处理",
            ]
        )

        # Transfer to Bob: he reads the history; the customer's end re-keys Ana out.
        await pane.locator("button", has_text="Transfer…").click()
        await pane.locator("select.transfer-target").select_option(f"agent:{bob_id}")
        await pane.locator("form.transfer button[type=submit]").click()
        bob_pane = bob.locator(".chat-pane:not([hidden])")
        await expect(bob_pane.locator(".msg.them .text")).to_have_text(
            [
                MASKED_CARD,
                "我的地址是上海市浦东新区世纪大道100号",
            ]
        )
        await customer_says(customer, "after the transfer")
        await expect(bob_pane.locator(".msg.them .text").last).to_have_text("after the transfer")
        chat_id = (await gateway.svc.store.list_chats("demo"))[0].id
        chat = await gateway.svc.store.get_chat(chat_id)
        assert chat is not None and chat.mode == "e2e" and chat.e2e_epoch >= 2

        # Reload both sides: keys come back from storage (customer) and IndexedDB (console).
        await customer.reload()
        await expect(customer.locator("#cdw-panel")).to_be_visible()  # reopened as it was
        await expect(customer.locator(".e2e-badge")).to_be_visible()
        await expect(customer.locator(".msg .text")).to_have_text(
            [
                MASKED_CARD,
                "我的地址是上海市浦东新区世纪大道100号",
                "收到，马上处理",
                "after the transfer",
            ]
        )
        await bob.reload()
        await bob.locator(".tabs .queue-item, .tabs li").first.click()
        await expect(bob.locator(".chat-pane:not([hidden]) .msg .text").last).to_have_text(
            "after the transfer"
        )
        await agent_says(bob, "Bob here after reloading")
        await expect(customer.locator(".msg.agent .text").last).to_have_text(
            "Bob here after reloading"
        )
        await screenshot(customer, "widget-e2e")
        await screenshot(bob, "console-e2e")
        await (
            bob.locator(".chat-pane:not([hidden])").locator("button", has_text="Close chat").click()
        )
        await expect(customer.locator(".log")).to_contain_text("The agent ended the chat.")

        # The gateway kept ciphertext only.
        stored = _database_bytes(Path(gateway.svc.config.server.data_dir))
        for needle in ("4111 1111 1111 1111", "世纪大道100号", "马上处理", "Bob here after"):
            assert needle.encode() not in stored, needle
        for page in (ana, bob, sue, customer):
            assert page.js_errors == [], page.js_errors
    finally:
        for ctx, _ in pages:
            await ctx.close()


async def test_a_key_the_tenant_did_not_certify_is_refused_visibly(browser, gateway):
    """The gateway plants a device certificate made with a key of its own: the widget
    refuses it, says so, and wraps nothing to it."""
    await _e2e_tenant(gateway)
    forger = TenantSigningKey.generate()
    await gateway.agent("eve@example.com", name="Eve")
    ctx_e, eve = await new_page(browser)
    ctx_c, customer = await new_page(browser, locale="zh-CN")
    try:
        await login_console(eve, gateway, "eve@example.com")
        device_id = await _certify_console(gateway, eve, "eve@example.com", forger)
        await open_widget_zh(customer, gateway)
        await eve.locator(".queue-item button").first.click()
        await expect(customer.locator(".alert")).to_have_text(
            "已拒绝一个未经公司认证的密钥，没有任何内容为其加密。"
        )
        chat_id = (await gateway.svc.store.list_chats("demo"))[0].id
        assert await gateway.svc.store.e2e_wraps_for(chat_id, device_id) == []
        await customer.fill("#cdw-input", "这条消息不应被读取")
        await customer.press("#cdw-input", "Enter")
        pane = eve.locator(".chat-pane:not([hidden])")
        await expect(pane.locator(".msg.them")).to_have_count(0)  # waits for a key that never comes
        await screenshot(customer, "widget-e2e-refused-zh")
    finally:
        for ctx in (ctx_e, ctx_c):
            await ctx.close()


def _database_bytes(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in data_dir.glob("cipherdesk.db*"))


async def open_widget_zh(page: Any, gateway: bx.Gateway) -> None:
    await page.goto(gateway.base_url + "/demo")
    await page.click("#cipherdesk-widget >> .launcher")
    await page.fill("#cdw-name", "王芳")
    await page.click(".prechat button[type=submit]")
    await expect(page.locator(".e2e-badge")).to_have_text("端到端加密")


async def test_the_browser_engine_passes_the_shared_vectors(browser, gateway):
    """tests/crypto/e2e_vectors.json: the JavaScript twin verifies the certificate, opens
    the wrapped key and the message, and recomputes the commitment, byte for byte."""
    ctx, page = await new_page(browser)
    try:
        await page.goto(gateway.base_url + "/console")
        result = await page.evaluate(
            """async (v) => {
              const E = CipherdeskE2E, P = CipherdeskProtocol;
              const c = v.certificate;
              const cert = E.verifyCertificate(v.tenant_verify_key, c.body, c.sig, c.now);
              const secret = P.b64decode(v.device_private_key);
              const device = new E.DeviceKey({ publicKey: '', secret });
              const key = await E.unwrapChatKey(v.wrap.wrapped, device, v.wrap.chat, v.wrap.epoch);
              let wrongChat = null;
              try { await E.unwrapChatKey(v.wrap.wrapped, device, 'other', 1); }
              catch (e) { wrongChat = e.code; }
              const m = v.message;
              const opened = await E.openMessage(key, {c: m.c, fc: m.fc, id: m.id, e: m.epoch},
                                                 m.chat, m.sender);
              const k = v.commitment;
              const fk = P.b64decode(k.franking_key);
              const fc = await E.commitment(fk, k.chat, k.sender, k.id, k.text);
              let forged = null;
              const body = c.body.replace('agt_vector', 'agt_other');
              try { E.verifyCertificate(v.tenant_verify_key, body, c.sig, c.now); }
              catch (e) { forged = e.code; }
              const text = opened.text;
              return { agent: cert.agent, key: P.b64encode(key), text, fc, wrongChat, forged };
            }""",
            VECTORS,
        )
        assert result == {
            "agent": VECTORS["certificate"]["expect"]["agent"],
            "key": VECTORS["wrap"]["chat_key"],
            "text": VECTORS["message"]["text"],
            "fc": VECTORS["commitment"]["fc"],
            "wrongChat": "wrong_chat",
            "forged": "bad_signature",
        }
        # And a message sealed by the browser opens in Python.
        sealed = await page.evaluate(
            """async () => {
              const key = new Uint8Array(32).fill(7);
              const text = '浏览器 → Python';
              return await CipherdeskE2E.sealMessage(key, 'c1', 'customer', 'm1', 1, text);
            }"""
        )
        where = {"chat": "c1", "sender": "customer", "msg_id": "m1", "epoch": 1}
        opened = open_message(bytes([7] * 32), c=sealed["c"], fc=sealed["fc"], **where)
        assert opened.text == "浏览器 → Python"
    finally:
        await ctx.close()


ADMIN_TEXT = {
    "en-US": {
        "nav": "End-to-end",
        "saved": "End-to-end settings saved",
        "pending": "Awaiting certificate",
        "revoked": "Revoked",
    },
    "zh-CN": {
        "nav": "端到端加密",
        "saved": "端到端设置已保存",
        "pending": "待认证",
        "revoked": "已吊销",
    },
}


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
async def test_admin_page_sets_the_mode_and_lists_device_keys(browser, gateway, locale):
    """An admin pastes the verify key and switches the tenant to e2e (after the step-up),
    sees the agents' device keys with fingerprints, and revokes one."""
    words = ADMIN_TEXT[locale]
    tag = locale.lower()
    admin_email = f"e2e-admin-{tag}@example.com"
    await gateway.agent(admin_email, role="admin", name="Admin")
    signing = TenantSigningKey.generate()
    ctx_a, agent_page = await new_page(browser, locale=locale)
    ctx, admin = await new_page(browser, locale=locale)
    try:
        await login_console(admin, gateway, admin_email, path="/admin#e2e")
        main = admin.locator("#admin-main[data-section='e2e'][aria-busy='false']")
        await expect(main).to_be_visible()
        await expect(admin.locator("nav.admin-nav a[aria-current='page']")).to_have_text(
            words["nav"]
        )
        await admin.select_option("#e2e-mode", "e2e")
        await admin.fill("#e2e-key", signing.verify_key)
        await admin.click("#e2e-settings button[type=submit]")
        await expect(admin.locator(".toast").last).to_have_text(words["saved"])
        tenant = await gateway.svc.store.get_tenant("demo")
        assert tenant is not None and tenant.settings["mode"] == "e2e"

        # An agent signs in: the console registers a device key, shown here pending.
        agent_email = f"e2e-agent-{tag}@example.com"
        await gateway.agent(agent_email, name="Lei")
        await login_console(agent_page, gateway, agent_email)
        await expect(agent_page.locator("#e2e-device")).to_have_class("pill warn")
        await admin.reload()
        row = admin.locator("#e2e-devices tbody tr", has_text="Lei")
        await expect(row).to_contain_text(words["pending"])
        (device,) = await gateway.svc.store.list_e2e_devices("demo", gateway.ids[agent_email])
        fingerprint = await agent_page.evaluate(
            "(pk) => CipherdeskE2E.fingerprint(pk)", device.public_key
        )
        await expect(row).to_contain_text(fingerprint)  # what the admin compares
        if locale == "zh-CN":
            allowed = ("cipherdesk", "Admin", "Lei", "base64", "data-tenant-key")
            assert await bx.english_left(admin, allowed=allowed) == []
        await screenshot(admin, f"admin-e2e-{tag}")
        admin.once("dialog", lambda d: d.accept())
        await row.locator("button").click()
        await expect(row).to_contain_text(words["revoked"])
        assert admin.js_errors == [] and agent_page.js_errors == []
    finally:
        for c in (ctx, ctx_a):
            await c.close()


async def test_a_pinned_widget_never_chats_in_the_clear(browser, gateway):
    """A page pins a tenant key but the gateway says the tenant is in inspect mode (a
    downgrade): the widget refuses to open a chat, says so, and sends nothing."""
    pin = TenantSigningKey.generate().verify_key
    # The company's markup pins the key: the attribute is set on the embed tag as the
    # parser inserts it, before the (async) widget script runs. (A page served through a
    # route would be a "public" page to Chromium's local-network checks.)
    pin_markup = (
        "new MutationObserver((_, obs) => {"
        "  const tag = document.querySelector('script[data-tenant]');"
        f"  if (tag) {{ tag.setAttribute('data-tenant-key', '{pin}'); obs.disconnect(); }}"
        "}).observe(document, { childList: true, subtree: true });"
    )
    ctx, page = await new_page(browser)
    try:
        await page.add_init_script(pin_markup)
        await page.goto(gateway.base_url + "/demo")
        assert await page.get_attribute("script[data-tenant]", "data-tenant-key") == pin
        await page.click("#cipherdesk-widget >> .launcher")
        await page.fill("#cdw-name", "Ada")
        await page.click(".prechat button[type=submit]")
        await expect(page.locator(".alert")).to_contain_text(
            "this page requires end-to-end encryption"
        )
        assert await gateway.svc.store.list_chats("demo") == []
        assert page.js_errors == [], page.js_errors
    finally:
        await ctx.close()


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
async def test_axe_on_an_e2e_chat(browser, gateway, locale):
    """axe-core finds no serious/critical problem in the widget and the console of an e2e
    chat (badge, verified-agent lines, report buttons, the device pill and chat tag)."""
    signing = await _e2e_tenant(gateway)
    email = f"axe-{locale.lower()}@example.com"
    await gateway.agent(email, name="Ana")
    ctx_a, ana = await a11y_page(browser, locale)
    ctx_c, customer = await a11y_page(browser, locale)
    try:
        await login_console(ana, gateway, email)
        await _certify_console(gateway, ana, email, signing)
        await customer.goto(gateway.base_url + "/demo")
        await customer.click("#cipherdesk-widget >> .launcher")
        await customer.fill("#cdw-name", "Ada")
        await customer.click(".prechat button[type=submit]")
        await customer_says(customer, "hello")
        await ana.locator(".queue-item button.primary").click()
        pane = ana.locator(".chat-pane:not([hidden])")
        await expect(pane.locator(".msg.them .report")).to_have_count(1)
        await agent_says(ana, "hi")
        await expect(customer.locator(".msg.agent .report")).to_have_count(1)
        problems = {
            "widget e2e": await axe_problems(customer),
            "console e2e": await axe_problems(ana),
        }
    finally:
        for ctx in (ctx_a, ctx_c):
            await ctx.close()
    assert {k: v for k, v in problems.items() if v} == {}
