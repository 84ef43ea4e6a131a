"""Real browser: an agent whose credentials are changed from another session is told.

Issue 11.3: the change (here: new recovery codes, after a step-up) revokes every other
session; the open console's socket is closed 4401 "credentials changed" and the console
shows the bilingual notice on its login screen.
"""

from __future__ import annotations

import pytest

from tests.e2e import browser as bx
from tests.e2e.browser import expect, login_console, new_page

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway


async def test_console_shows_the_credentials_changed_notice(browser, gateway):
    email = "notice@example.com"
    await gateway.agent(email, name="Nora")
    ctx, console = await new_page(browser)
    try:
        await login_console(console, gateway, email)
        await expect(console.locator(".pill")).to_have_text("Online")
        # The agent's recovery codes are regenerated from elsewhere (the API path needs a
        # step-up; the service call is the same change): every session is revoked.
        codes = await gateway.svc.logins.regenerate_recovery_codes(
            await gateway.svc.store.get_agent_by_email(email), actor="test")
        assert len(codes) == 10
        notice = console.locator("form.login .form-error")
        await expect(notice).to_be_visible()
        await expect(notice).to_contain_text("您的登录凭据")
        await expect(notice).to_contain_text("credentials (password, authenticator or recovery")
        assert console.js_errors == []
    finally:
        await ctx.close()
