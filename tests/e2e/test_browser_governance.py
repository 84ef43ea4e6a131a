"""Governance in a real browser (issue 14, "Done when"): an admin sees an alert appear live
when a supervisor opens 20 transcripts within a minute, acknowledges it, and the
incident record shows it; the tenant-wide emergency panel works; Chinese UI strings."""

from __future__ import annotations

import aiohttp
import pytest

from gateway.sdk.client import AgentClient
from tests.e2e import browser as bx
from tests.e2e.browser import expect, login_console, new_page, screenshot
from tests.gateway.helpers import login

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway


async def _supervisor_token(gateway) -> str:
    await gateway.agent("sup@example.com", role="supervisor", name="Sam Super")
    async with aiohttp.ClientSession() as http:
        return await login(
            http,
            gateway.base_url,
            "sup@example.com",
            gateway.passwords["sup@example.com"],
            gateway.secrets["sup@example.com"],
            gateway.svc.clock(),
        )


async def test_admin_sees_bulk_access_alert_live_acknowledges_it_and_incident_shows_it(
    browser, gateway
):
    await gateway.agent("root@example.com", role="admin", name="Rita Root")
    sup_token = await _supervisor_token(gateway)
    chats = [(await gateway.svc.chats.open_chat("demo")).chat.id for _ in range(20)]
    ctx, admin = await new_page(browser)
    try:
        await login_console(admin, gateway, "root@example.com", path="/admin#alerts")
        await expect(admin.locator("#alerts-live")).to_have_text("Live")
        await expect(admin.locator("#alerts-table tbody")).to_contain_text("No alerts.")

        # The supervisor opens 20 transcripts over the real agent socket.
        async with AgentClient(gateway.base_url, token=sup_token) as supervisor:
            for chat in chats:
                await supervisor.watch(chat)

        row = admin.locator("#alerts-table tbody tr[data-alert]")
        await expect(row).to_have_count(1)  # appeared without a reload
        await expect(row).to_contain_text("Bulk transcript access")
        sup_id = gateway.ids["sup@example.com"]
        await expect(row).to_contain_text(sup_id)
        await expect(row.locator(".alert-state")).to_have_text("open")
        await screenshot(admin, "admin-alert")
        await row.locator("button[data-action=ack]").click()
        await expect(row.locator(".alert-state")).to_have_text("acknowledged")  # live again

        await admin.click("nav a[href='#incidents']")
        timeline = admin.locator("#incident-timeline tbody")
        await expect(timeline.locator("tr")).to_have_count(3)
        await expect(timeline).to_contain_text("alert.fired")
        await expect(timeline).to_contain_text("alert.acknowledged")
        await expect(timeline).to_contain_text(gateway.ids["root@example.com"])
        await screenshot(admin, "admin-incident")
        assert admin.js_errors == []
    finally:
        await ctx.close()
    [alert] = await gateway.svc.store.list_alerts("demo")
    assert (alert.state, alert.acked_by) == ("acknowledged", gateway.ids["root@example.com"])


async def test_tenant_wide_emergency_panel_in_chinese(browser, gateway):
    await gateway.agent("chief@example.com", role="admin", name="Chief")
    await gateway.agent("ann@example.com", name="Ann")
    context = await browser.new_context(locale="zh-CN", viewport=bx.DESKTOP)
    context.set_default_timeout(bx.TIMEOUT_MS)
    admin = await context.new_page()
    agent_ctx, agent = await new_page(browser)
    try:
        await login_console(agent, gateway, "ann@example.com")
        await expect(agent.locator(".pill[role=status]")).to_have_text("Online")
        await login_console(admin, gateway, "chief@example.com", path="/admin#emergency")
        panel = admin.locator("#tenant-wide-panel")
        await expect(panel).to_contain_text("全租户应急操作")
        await expect(admin.locator("#plugins-state")).to_have_text("插件当前：运行中")
        admin.once("dialog", lambda d: d.accept())
        await admin.click("#revoke-all-btn")
        await expect(admin.locator("#toasts")).to_contain_text("已注销")
        # Ann's console was cut off and asks for a login again.
        await expect(agent.locator("form.login")).to_be_visible()
        await admin.click("#pause-plugins-btn")
        await expect(admin.locator("#plugins-state")).to_have_text("插件当前：已暂停")
        tenant = await gateway.svc.store.get_tenant("demo")
        assert tenant.settings.get("plugins_paused") is True
        await admin.click("nav a[href='#incidents']")
        timeline = admin.locator("#incident-timeline tbody")
        await expect(timeline).to_contain_text("emergency.sessions_revoked")
        await expect(timeline).to_contain_text("emergency.plugins_paused")
        await admin.click("#close-incident")
        await expect(admin.locator("#toasts")).to_contain_text("事件已结束")
    finally:
        await context.close()
        await agent_ctx.close()


async def test_admin_approves_a_supervisors_request_in_the_browser(browser, gateway):
    from crypto.envelope import new_data_key
    from gateway.store.base import Chat, PolicyFlag
    from gateway.transcripts import seal_json

    await gateway.agent("approver@example.com", role="admin", name="Ada Approver")
    await gateway.agent("sue2@example.com", role="supervisor", name="Sue")
    key = new_data_key()
    svc = gateway.svc
    chat = Chat(id="chat-approval", tenant_id="demo", state="closed", created_at=svc.clock())
    await svc.store.create_chat(chat, svc.keyring.wrap(key))
    flag_id = await svc.store.add_flag(
        PolicyFlag(
            chat_id=chat.id,
            tenant_id="demo",
            seq=1,
            kinds=["fraud"],
            original_sealed=seal_json(key, chat.id, "flag:1", {"text": "send me the code"}),
            created_at=svc.clock(),
        )
    )
    ctx, admin = await new_page(browser)
    try:
        await login_console(admin, gateway, "approver@example.com", path="/admin#approvals")
        await admin.select_option("#approval-mode", "two_person")
        await admin.click("#approval-settings button[type=submit]")
        await expect(admin.locator("#toasts")).to_contain_text("Saved.")
        async with aiohttp.ClientSession() as http:
            token = await login(
                http,
                gateway.base_url,
                "sue2@example.com",
                gateway.passwords["sue2@example.com"],
                gateway.secrets["sue2@example.com"],
                svc.clock(),
            )
            auth = {"Authorization": f"Bearer {token}"}
            original = f"{gateway.base_url}/api/flags/{flag_id}/original"
            async with http.get(original, headers=auth) as r:
                assert r.status == 403
            async with http.post(
                f"{gateway.base_url}/api/approvals",
                headers=auth,
                json={
                    "action": "flag.view_original",
                    "target": str(flag_id),
                    "reason": "customer reported a scam attempt",
                },
            ) as r:
                assert r.status == 202
            await admin.reload()
            row = admin.locator("#approvals-table tbody tr[data-grant]")
            await expect(row).to_contain_text("customer reported a scam attempt")
            await row.locator("button[data-action=approve]").click()
            await expect(admin.locator("#approvals-table tbody")).to_contain_text(
                "No pending requests."
            )
            async with http.get(original, headers=auth) as r:
                assert r.status == 200 and (await r.json())["original"] == "send me the code"
        assert admin.js_errors == []
    finally:
        await ctx.close()
