"""Approving a plugin's access to customer identities on the admin page (issue 14.3), in
English and Chinese: saving a webhook with "include identity" asks for a reason; in
"reason" mode the grant comes at once and the save goes through; in "two_person" mode
the identity setting is not stored until a second person approves."""

from __future__ import annotations

import pytest

from tests.e2e import browser as bx
from tests.e2e.browser import expect, login_console, new_page

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway

TEXT = {
    "en-US": {"title": "Approval needed", "saved": "webhook", "pending": "Approval requested"},
    "zh-CN": {"title": "需要审批", "saved": "webhook", "pending": "已提交审批申请"},
}
REASON = "the helpdesk needs the customer's account id to process refunds"


async def _approvals(gw: bx.Gateway, mode: str) -> None:
    tenant = await gw.svc.store.get_tenant("demo")
    assert tenant is not None
    tenant.settings = {**tenant.settings, "approvals": {"mode": mode, "ttl_minutes": 30}}
    await gw.svc.store.update_tenant(tenant)
    gw.svc.tenants.invalidate("demo")
    # a webhook without identities, as the tenant had it before this test
    await gw.svc.plugins.configure(
        "demo", "webhook", {"url": "https://hooks.example.test/cd", "secret": "s" * 32}
    )


async def _fill_webhook(page) -> None:
    await page.check("#plugin-webhook-enabled")
    await page.fill("#plugin-webhook-url", "https://hooks.example.test/cd")
    await page.fill("#plugin-webhook-secret", "s" * 32)
    await page.check("#plugin-webhook-include_identity")
    await page.click("#plugin-webhook button[type=submit]")


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
async def test_reason_mode_grants_at_once_and_saves(browser, gateway, locale):
    await _approvals(gateway, "reason")
    email = f"plugin-admin-{locale.lower()}@example.com"
    await gateway.agent(email, role="admin")
    ctx, page = await new_page(browser, locale=locale)
    try:
        await login_console(page, gateway, email, path="/admin#plugins")
        await _fill_webhook(page)
        slot = page.locator("#plugin-webhook .approval-slot")
        await expect(slot.get_by_role("heading")).to_have_text(TEXT[locale]["title"])
        await slot.locator("textarea").fill(REASON)
        await slot.locator("button").click()
        await expect(page.locator("#toasts")).to_contain_text(TEXT[locale]["saved"])
        stored = await gateway.svc.store.get_plugin_config("demo", "webhook")
        assert stored is not None and stored.config["include_identity"] is True
        # the browser logs the expected 403 approval_required answer; nothing else
        errors = page.js_errors  # type: ignore[attr-defined]
        assert [e for e in errors if "status of 403" not in e] == []
    finally:
        await ctx.close()


async def test_two_person_mode_stores_nothing_until_approved(browser, gateway):
    await _approvals(gateway, "two_person")
    email = "plugin-admin-2p@example.com"
    await gateway.agent(email, role="admin")
    ctx, page = await new_page(browser, locale="en-US")
    try:
        await login_console(page, gateway, email, path="/admin#plugins")
        await _fill_webhook(page)
        slot = page.locator("#plugin-webhook .approval-slot")
        await slot.locator("textarea").fill(REASON)
        await slot.locator("button").click()
        await expect(page.locator("#toasts")).to_contain_text(TEXT["en-US"]["pending"])
        stored = await gateway.svc.store.get_plugin_config("demo", "webhook")
        assert stored is not None and stored.config["include_identity"] is False
        grants = await gateway.svc.store.list_grants("demo", state="pending")
        assert [(g.action, g.target) for g in grants] == [("plugin.identity", "webhook")]
        # the browser logs the expected 403 approval_required answer; nothing else
        errors = page.js_errors  # type: ignore[attr-defined]
        assert [e for e in errors if "status of 403" not in e] == []
    finally:
        await ctx.close()
