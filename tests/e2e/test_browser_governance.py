"""Governance in a real browser (issue 14, "Done when"): an admin sees an alert appear live
when a supervisor opens 20 transcripts within a minute, acknowledges it, and the
incident record shows it; the tenant-wide emergency panel works; Chinese UI strings."""

from __future__ import annotations

import aiohttp
import pytest

from gateway.client import AgentClient
from tests.e2e import browser as bx
from tests.e2e.browser import expect, login_console, new_page, screenshot
from tests.gateway.helpers import login

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway


async def _supervisor_token(gateway) -> str:
    await gateway.agent("sup@example.com", role="supervisor", name="Sam Super")
    async with aiohttp.ClientSession() as http:
        return await login(http, gateway.base_url, "sup@example.com",
                           gateway.passwords["sup@example.com"],
                           gateway.secrets["sup@example.com"], gateway.svc.clock())


async def test_admin_sees_bulk_access_alert_live_acknowledges_it_and_incident_shows_it(
        browser, gateway):
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
        await expect(agent.locator(".pill")).to_have_text("Online")
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
