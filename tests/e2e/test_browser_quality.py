"""Service quality in real Chromium (issue 15.4), in English and Chinese: the customer
rates a chat the agent closed (stars and a comment) in the widget; the admin's quality
report shows the figures, draws its charts with Chart.js under the page's strict CSP,
offers the CSV, saves the SLA targets, and has no serious accessibility problem."""

from __future__ import annotations

import asyncio

import pytest

from auth.roles import Principal, Role
from tests.e2e import browser as bx
from tests.e2e.browser import (
    customer_says,
    english_left,
    expect,
    login_console,
    new_page,
    open_widget_form,
    screenshot,
)
from tests.e2e.test_browser_a11y import a11y_page, axe_problems

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway

WORDS = {
    "en-US": {"stars": "4 out of 5", "nav": "Service quality", "saved": "Targets saved."},
    "zh-CN": {"stars": "4 星（满分 5 星）", "nav": "服务质量", "saved": "服务目标已保存。"},
}


async def _rated_chat(browser, gateway, locale: str, agent_id: str) -> str:
    """A widget chat the agent answers and closes; the customer then rates it 4 stars
    with a comment holding a card number. Returns the chat id."""
    ctx, customer = await new_page(browser, locale=locale)
    svc = gateway.svc
    try:
        await open_widget_form(customer, gateway, name="Ada", topic=None)
        await customer_says(customer, "where is my parcel?")
        await expect(customer.locator(".msg.me")).to_have_count(1)
        waiting = []
        for _ in range(100):
            waiting = [c for c in await svc.store.list_chats("demo") if c.state == "queued"]
            if waiting:
                break
            await asyncio.sleep(0.05)
        assert len(waiting) == 1
        chat_id = waiting[0].id
        agent = Principal(agent_id=agent_id, tenant_id="demo", role=Role.AGENT)
        await svc.chats.accept(agent, chat_id)
        await svc.chats.post_agent_message(agent, chat_id, "a1", "It arrives tomorrow.")
        await svc.chats.close(chat_id, "demo", by="agent", principal=agent)
        await customer.get_by_role("button", name=WORDS[locale]["stars"], exact=True).click()
        await customer.fill(".rate-comment", "great help, card 4111 1111 1111 1111")
        await customer.click(".rate-send")
        for _ in range(100):
            stored = await svc.store.get_chat(chat_id)
            if stored is not None and stored.csat is not None:
                break
            await asyncio.sleep(0.05)
        assert stored is not None and stored.csat == 4
        comment = svc.chats.rating_comment(stored, await svc.keys.get(chat_id))
        assert comment == "great help, card **** **** **** 1111"
        assert customer.js_errors == []  # type: ignore[attr-defined]
        return chat_id
    finally:
        await ctx.close()


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
async def test_rating_and_quality_report(browser, gateway, locale):
    tag = locale.lower()
    agent_id = await gateway.agent(f"q-agent-{tag}@example.com", name=f"Ana {tag}")
    admin_email = f"q-admin-{tag}@example.com"
    await gateway.agent(admin_email, role="admin")
    await _rated_chat(browser, gateway, locale, agent_id)

    ctx, admin = await new_page(browser, locale=locale)
    try:
        await login_console(admin, gateway, admin_email, path="/admin#quality")
        main = admin.locator("#admin-main[data-section='quality'][aria-busy='false']")
        await expect(main).to_be_visible()
        await expect(admin.locator(".admin-nav a[aria-current='page']")).to_have_text(
            WORDS[locale]["nav"]
        )
        await admin.select_option("#quality-filters select[name='group']", "agent")
        await admin.click("#quality-filters button[type=submit]")
        row = admin.locator(f".quality-table tr[data-key='{agent_id}']")
        await expect(row).to_be_visible()
        cells = row.locator("td")
        await expect(cells.nth(0)).to_have_text("1")  # chats
        await expect(cells.nth(9)).to_contain_text("4")  # rating 4 (1)
        # both charts drawn by Chart.js (the strict CSP let /static/chart.js run)
        for chart in ("quality-times", "quality-csat"):
            await expect(admin.locator(f"canvas#{chart}")).to_be_visible()
            drawn = await admin.evaluate(f"() => !!window.Chart.getChart('{chart}')")
            assert drawn, chart
        href = await admin.get_attribute("#quality-csv", "href")
        assert href is not None and href.startswith("/api/quality.csv?group=agent")
        async with admin.expect_download() as download_info:
            await admin.click("#quality-csv")
        download = await download_info.value
        assert download.suggested_filename.startswith("cipherdesk-quality-agent-")
        # the targets form saves through the governance settings
        await admin.fill("#quality-targets input[name='queue_wait_sla_seconds']", "90")
        await admin.click("#quality-targets button[type=submit]")
        await expect(admin.locator("#toasts")).to_contain_text(WORDS[locale]["saved"])
        tenant = await gateway.svc.store.get_tenant("demo")
        assert tenant is not None and tenant.settings["quality"]["queue_wait_sla_seconds"] == 90
        await expect(main).to_be_visible()
        if locale == "zh-CN":
            allowed = ("cipherdesk", "CSV", "Ana", "Asia/", "UTC")
            assert await english_left(admin, allowed=allowed) == []
        await screenshot(admin, f"admin-quality-{tag}")
        assert admin.js_errors == []  # type: ignore[attr-defined]
    finally:
        await ctx.close()

    auditor_email = f"q-a11y-{tag}@example.com"  # a TOTP code is good for one login only
    await gateway.agent(auditor_email, role="admin")
    ctx, page = await a11y_page(browser, locale)
    try:
        await login_console(page, gateway, auditor_email, path="/admin#quality")
        await expect(page.locator("#admin-main[aria-busy='false'] .quality-table")).to_be_visible()
        assert await axe_problems(page) == []
    finally:
        await ctx.close()
