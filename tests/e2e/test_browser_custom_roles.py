"""Custom roles on the admin page (issue 14.3), in Chinese and English: an admin defines
a quality-analyst role, gives it to an agent from the agent list, cannot delete it while
it is held, and the agent's principal follows it."""

from __future__ import annotations

import pytest

from gateway.sessions import agent_principal
from tests.e2e import browser as bx
from tests.e2e.browser import english_left, expect, login_console, new_page, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway

TEXT = {
    "zh-CN": {
        "title": "自定义角色",
        "none": "尚无自定义角色",
        "quality": "查看服务质量报表",
        "saved": "已保存角色",
        "in_use": "仍有坐席持有此角色",
        "option": "（基于主管）",
    },
    "en-US": {
        "title": "Custom roles",
        "none": "No custom roles yet",
        "quality": "See the quality report",
        "saved": "saved",
        "in_use": "Agents still hold this role",
        "option": "(supervisor)",
    },
}


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
async def test_admin_defines_assigns_and_keeps_a_custom_role(browser, gateway, locale):
    text = TEXT[locale]
    suffix = locale.lower()
    role = f"qa-{suffix}"
    admin_email = f"roles-admin-{suffix}@example.com"
    await gateway.agent(admin_email, role="admin")
    agent_id = await gateway.agent(f"analyst-{suffix}@example.com")
    ctx, page = await new_page(browser, locale=locale)
    page.on("dialog", lambda dialog: dialog.accept())
    try:
        await login_console(page, gateway, admin_email, path="/admin")
        await page.click("nav a[href='#roles']")
        await expect(page.locator("main h1")).to_have_text(text["title"])
        # every panel of the section drawn (its data loaded) before the form is used
        await expect(
            page.locator("#admin-main[data-section='roles'][aria-busy='false']")
        ).to_be_visible()
        # Only a supervisor's permissions are offered for a supervisor-based role.
        await page.select_option("#role-base", "supervisor")
        boxes = page.locator("#role-permissions input[type=checkbox]")
        await expect(boxes).to_have_count(7)
        await expect(page.locator("#role-permissions")).to_contain_text(text["quality"])
        await page.fill("#role-name", role)
        await page.check("#role-permissions input[value='quality_read']")
        await page.click("#role-form button[type=submit]")
        await expect(page.locator("#toasts")).to_contain_text(text["saved"])
        row = page.locator(f"#roles-table tr[data-role='{role}']")
        await expect(row).to_contain_text(text["quality"])
        if locale == "zh-CN":
            await screenshot(page, "admin-custom-roles")
            # Left in Latin script: the role's name and the permission codes (data).
            assert await english_left(page, ("cipherdesk", role, "_")) == []

        await page.click("nav a[href='#agents']")
        await expect(
            page.locator("#admin-main[data-section='agents'][aria-busy='false']")
        ).to_be_visible()
        picker = page.locator(f"#agents-table tr[data-agent='{agent_id}'] select").first
        await expect(picker.locator(f"option[value='custom:{role}']")).to_contain_text(
            text["option"]
        )
        await picker.select_option(f"custom:{role}")
        # The change's own toast (it names the agent), not the role's "saved" one.
        await expect(page.locator("#toasts")).to_contain_text(f"analyst-{suffix}@example.com")
        stored = await gateway.svc.store.get_agent(agent_id)
        assert stored is not None and stored.custom_role == role and stored.role == "supervisor"
        assert {p.value for p in agent_principal(stored).permissions} == {"quality_read"}

        # The analyst's console names the custom role and links the one admin section
        # the role opens (the quality report), and nothing else of the admin page.
        actx, analyst = await new_page(browser, locale=locale)
        try:
            await login_console(analyst, gateway, f"analyst-{suffix}@example.com")
            await expect(analyst.locator(".topbar .who .role")).to_have_text(role)
            await analyst.locator(".topbar a[href='/admin']").click()
            await expect(analyst.locator(".admin-nav a[href='#quality']")).to_be_visible()
            assert await analyst.locator(".admin-nav a[href='#agents']").count() == 0
            assert await analyst.locator(".admin-nav a[href='#audit']").count() == 0
        finally:
            await actx.close()

        # Held, so it cannot be deleted: the refusal is shown in the page's language.
        await page.click("nav a[href='#roles']")
        await expect(
            page.locator("#admin-main[data-section='roles'][aria-busy='false']")
        ).to_be_visible()
        await page.locator(f"#roles-table tr[data-role='{role}'] button.danger").click()
        await expect(page.locator("#toasts")).to_contain_text(text["in_use"])
        assert [r.name for r in await gateway.svc.store.list_custom_roles("demo")].count(role) == 1
        # The browser logs the refused DELETE itself; nothing else may have gone wrong.
        errors = page.js_errors  # type: ignore[attr-defined]
        assert [e for e in errors if "status of 409" not in e] == [], errors
    finally:
        await ctx.close()
