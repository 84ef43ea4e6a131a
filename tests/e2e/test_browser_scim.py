"""SCIM on the admin page (issue 20.3), in Chinese and English: an agent the identity
provider created is marked as such and gets an activation link; the group -> role
mapping is edited and saved from the roles section."""

from __future__ import annotations

import pytest

from gateway.scim import ScimUserIn
from gateway.sessions import agent_principal
from tests.e2e import browser as bx
from tests.e2e.browser import expect, login_console, new_page

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway

TEXT = {
    "zh-CN": {
        "mark": "来自身份提供方",
        "link": "激活链接",
        "saved": "用户组映射已保存",
        "bad": "请按“组名 = 角色”书写每一行",
    },
    "en-US": {
        "mark": "from the identity provider",
        "link": "Activation link",
        "saved": "Group mapping saved",
        "bad": "Write each line as group name = role",
    },
}


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
async def test_provisioned_agent_and_group_mapping(browser, gateway, locale):
    text = TEXT[locale]
    suffix = locale.lower()
    admin_email = f"scim-admin-{suffix}@example.com"
    await gateway.agent(admin_email, role="admin")
    admin = await gateway.svc.store.get_agent_by_email(admin_email)
    assert admin is not None
    user = await gateway.svc.scim.create_user(
        agent_principal(admin),
        ScimUserIn(user_name=f"idp-{suffix}@example.com", emails=[]),
        "127.0.0.1",
    )
    ctx, page = await new_page(browser, locale=locale)
    try:
        await login_console(page, gateway, admin_email, path="/admin")
        row = page.locator(f"#agents-table tr[data-agent='{user.id}']")
        await expect(row).to_contain_text(text["mark"])
        await row.get_by_role("button", name=text["link"]).click()
        await expect(page.locator("#activation-link")).to_contain_text("/invite#cdi_")

        await page.click("nav a[href='#roles']")
        await expect(
            page.locator("#admin-main[data-section='roles'][aria-busy='false']")
        ).to_be_visible()
        await page.fill("#scim-groups", "客服主管 = supervisor\nQA = agent")
        await page.click("#scim-form button[type=submit]")
        await expect(page.locator("#toasts")).to_contain_text(text["saved"])
        tenant = await gateway.svc.store.get_tenant("demo")
        assert tenant is not None
        assert tenant.settings["scim"]["group_roles"] == {"客服主管": "supervisor", "QA": "agent"}
        await page.fill("#scim-groups", "no role here")
        await page.click("#scim-form button[type=submit]")
        await expect(page.locator("#toasts")).to_contain_text(text["bad"])
        assert page.js_errors == []  # type: ignore[attr-defined]
    finally:
        await ctx.close()
