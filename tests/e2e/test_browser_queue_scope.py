"""Queue scoping on the admin page (issue 14.3), in English and Chinese: an admin picks a
queue under an agent's role; the agent is then scoped to it."""

from __future__ import annotations

import pytest

from tests.e2e import browser as bx
from tests.e2e.browser import expect, login_console, new_page

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway

TOAST = {"en-US": "now sees only billing", "zh-CN": "现在仅可见 billing"}


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
async def test_admin_scopes_an_agent_to_a_queue(browser, gateway, locale):
    tenant = await gateway.svc.store.get_tenant("demo")
    assert tenant is not None
    tenant.settings = {**tenant.settings, "queues": ["billing", "sales"]}
    await gateway.svc.store.update_tenant(tenant)
    gateway.svc.tenants.invalidate("demo")
    admin_email = f"scope-admin-{locale.lower()}@example.com"
    await gateway.agent(admin_email, role="admin")
    agent_id = await gateway.agent(f"scoped-{locale.lower()}@example.com")
    ctx, admin = await new_page(browser, locale=locale)
    try:
        await login_console(admin, gateway, admin_email, path="/admin")
        scope = admin.locator(f"#agents-table tr[data-agent='{agent_id}'] select.queue-scope")
        await scope.select_option(["billing"])
        await expect(admin.locator("#toasts")).to_contain_text(TOAST[locale])
        agent = await gateway.svc.store.get_agent(agent_id)
        assert agent is not None and agent.queues == ("billing",)
        assert admin.js_errors == []  # type: ignore[attr-defined]
    finally:
        await ctx.close()
