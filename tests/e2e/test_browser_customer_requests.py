"""A customer's rights on request from the admin page (issue 15.2), in Chinese and English:
the admin finds a customer by e-mail, downloads their chats as a PDF (masked, labelled in
the page's language) and as JSON, then erases them all -- through the tenant's approval
form -- and gets the signed destruction report."""

from __future__ import annotations

import json

import pytest
from pypdf import PdfReader

from auth.roles import Principal, Role
from gateway.protocol import Profile
from tests.e2e import browser as bx
from tests.e2e.browser import english_left, expect, login_console, new_page, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway

TEXT = {
    "zh-CN": {
        "title": "客户数据请求",
        "why": "导出客户的会话属于敏感访问",
        "pdf": "我的会话记录",
        "erased": "已删除 1 个会话",
    },
    "en-US": {
        "title": "Customer requests",
        "why": "Exporting a customer's conversations is sensitive access",
        "pdf": "My conversations",
        "erased": "1 chat erased",
    },
}


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
async def test_admin_exports_and_erases_a_customer(browser, gateway, locale):
    text = TEXT[locale]
    svc = gateway.svc
    suffix = locale.lower()
    email = f"ann-{suffix}@example.com"
    agent_id = await gateway.agent(f"cr-agent-{suffix}@example.com")
    who = Principal(agent_id=agent_id, tenant_id="demo", role=Role.AGENT)
    opened = await svc.chats.open_chat("demo", profile=Profile(name="Ann", email=email))
    await svc.chats.accept(who, opened.chat.id)
    await svc.chats.post_customer_message("demo", opened.chat.id, "m1", "call me on 13800138000")
    await svc.chats.close(opened.chat.id, "demo", by="agent", principal=who)
    tenant = await svc.store.get_tenant("demo")
    assert tenant is not None
    tenant.settings = {**tenant.settings, "approvals": {"mode": "reason", "ttl_minutes": 30}}
    await svc.store.update_tenant(tenant)
    svc.tenants.invalidate("demo")

    admin_email = f"cr-admin-{suffix}@example.com"
    await gateway.agent(admin_email, role="admin")
    ctx, page = await new_page(browser, locale=locale)
    page.on("dialog", lambda dialog: dialog.accept())
    try:
        await login_console(page, gateway, admin_email, path="/admin")
        await page.click("nav a[href='#customers']")
        await expect(page.locator("main h1")).to_have_text(text["title"])
        await expect(
            page.locator("#admin-main[data-section='customers'][aria-busy='false']")
        ).to_be_visible()
        await page.select_option("#customer-kind", "email")
        await page.fill("#customer-value", email)

        # Exports need a stated reason in this tenant: the approval form asks for it.
        await page.click("#customer-form .actions button >> nth=1")
        reason = page.locator("#customer-approval textarea")
        await expect(reason).to_be_visible()
        await expect(page.locator("#customer-approval")).to_contain_text(text["why"])
        if locale == "zh-CN":
            await screenshot(page, "admin-customer-requests")
            assert await english_left(page, ("cipherdesk", "sub", "JSON", "PDF", "GDPR")) == []
        why = "客户来电要求查阅本人的会话记录" if locale == "zh-CN" else "customer asked by phone"
        await reason.fill(why)
        async with page.expect_download() as info:
            await page.click("#customer-approval button")
        download = await info.value
        reader = PdfReader(await download.path())
        pdf = "\n".join(p.extract_text() for p in reader.pages)
        assert text["pdf"] in pdf and "138****8000" in pdf and "13800138000" not in pdf

        # The grant covers this customer for 30 minutes: the JSON export runs at once.
        async with page.expect_download() as info:
            await page.click("#customer-form .actions button >> nth=0")
        data = json.loads((await (await info.value).path()).read_text("utf-8"))
        assert [c["id"] for c in data["chats"]] == [opened.chat.id]
        assert "13800138000" not in json.dumps(data)

        # Erasing is its own action: asked for again, then done, with the report.
        await page.click("#customer-form .actions button.danger")
        request = "written deletion request of the customer"
        await page.locator("#customer-approval textarea").fill(request)
        await page.click("#customer-approval button")
        await expect(page.locator("#customer-result")).to_contain_text(text["erased"])
        await expect(page.locator("#customer-result code")).not_to_be_empty()
        assert await svc.store.get_chat_key(opened.chat.id) is None
        errors = page.js_errors  # type: ignore[attr-defined]
        # The browser logs the two 403 approval_required answers itself.
        assert [e for e in errors if "status of 403" not in e] == [], errors
    finally:
        await ctx.close()
