"""Real-browser test of the admin "API tokens" section (issue 20.4): create a token (shown
once), use it against the HTTP API, see its use, revoke it from the page."""

from __future__ import annotations

import aiohttp
import pytest

from tests.e2e import browser as bx
from tests.e2e.browser import english_left, expect, login_console, new_page, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway


async def test_admin_creates_uses_and_revokes_an_api_token(browser, gateway):
    await gateway.agent("root@example.com", role="admin", name="Rita Root")
    context, page = await new_page(browser, locale="zh-CN")
    page.on("dialog", lambda dialog: dialog.accept())
    try:
        await login_console(page, gateway, "root@example.com", path="/admin")
        await page.click("nav a[href='#tokens']")
        await expect(page.locator("main h1")).to_have_text("API 令牌")
        await expect(page.locator("#tokens-table tbody")).to_contain_text("还没有 API 令牌")
        await page.fill("#token-name", "夜间导出")
        await page.fill("#token-days", "7")
        await page.check("#create-token input[value='audit_read']")
        await page.click("#create-token button[type=submit]")
        value = page.locator("#new-token-value")
        await expect(value).to_contain_text("cdt_")
        token = (await value.text_content()).strip()
        await expect(page.locator("#tokens-table tbody tr")).to_have_count(1)
        await expect(page.locator("#tokens-table tbody tr")).to_contain_text("audit_read")
        await screenshot(page, "admin-api-tokens")
        # nothing left in English but the header's name and the permission codes
        assert await english_left(page, ("cipherdesk", "Authorization: Bearer")) == []

        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession() as http:
            async with http.get(gateway.base_url + "/api/audit", headers=headers) as r:
                assert r.status == 200
            async with http.get(gateway.base_url + "/api/agents", headers=headers) as r:
                assert r.status == 403  # not in its scope

            # reload the section: last use shown; then revoke from the page
            await page.click("nav a[href='#audit']")
            await page.click("nav a[href='#tokens']")
            row = page.locator("#tokens-table tbody tr").first
            await expect(row).not_to_contain_text("从未使用")
            await row.locator("button").click()
            await expect(page.locator("#toasts")).to_contain_text("已吊销")
            await expect(row).to_contain_text("已吊销")
            async with http.get(gateway.base_url + "/api/audit", headers=headers) as r:
                assert r.status == 401
        assert not page.js_errors, page.js_errors
    finally:
        await context.close()
