"""Accessibility in real Chromium: axe-core (npm ``axe-core``, pinned in package-lock.json,
injected into the page) finds no serious or critical violation on the widget, the
console and the admin pages, in English and Chinese; a customer and an agent can chat
with the keyboard only."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e import browser as bx
from tests.e2e.browser import REPO, expect, login_console, new_page

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway

AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
HAVE_AXE = AXE.is_file()


async def axe_problems(page: Any) -> list[str]:
    """Serious/critical axe violations of the page (shadow roots included)."""
    if not await page.evaluate("() => !!window.axe"):
        await page.add_script_tag(path=str(AXE))
    result = await page.evaluate("""async () => {
      const r = await axe.run(document, { resultTypes: ['violations'] });
      return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => v.id + ': ' + v.help + ' — '
          + v.nodes.map((n) => n.target.join(' ')).join(' | '));
    }""")
    return list(result)


async def a11y_page(browser: Any, locale: str, viewport: dict[str, int] | None = None):
    if not HAVE_AXE:
        pytest.skip("axe-core is not installed (npm ci)")
    # axe is injected as a script: the pages' strict CSP would refuse it.
    ctx = await browser.new_context(locale=locale, bypass_csp=True, viewport=viewport or bx.DESKTOP)
    ctx.set_default_timeout(bx.TIMEOUT_MS)
    return ctx, await ctx.new_page()


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
async def test_axe_widget_console_admin(browser, gateway, locale):
    await gateway.agent("root@example.com", role="admin", name="Root")
    ctx_c, customer = await a11y_page(browser, locale)
    ctx_a, admin = await a11y_page(browser, locale)
    problems: dict[str, list[str]] = {}
    try:
        await customer.goto(gateway.base_url + "/demo")
        await customer.click("#cipherdesk-widget >> .launcher")
        problems["widget prechat"] = await axe_problems(customer)
        await customer.fill("#cdw-name", "Ada")
        await customer.click(".prechat button[type=submit]")
        await customer.fill("#cdw-input", "hello")
        await customer.press("#cdw-input", "Enter")
        await expect(customer.locator(".msg.me")).to_have_count(1)

        await admin.goto(gateway.base_url + "/console")
        problems["console login"] = await axe_problems(admin)
        await login_console(admin, gateway, "root@example.com")
        await admin.locator(".queue-item button.primary").click()
        await expect(customer.locator(".msg.agent, .sys")).not_to_have_count(0)
        await admin.locator("textarea.chat-input").fill("hi")
        await admin.locator("textarea.chat-input").press("Enter")
        await expect(customer.locator(".msg.agent")).to_have_count(1)
        problems["console chat"] = await axe_problems(admin)
        problems["widget chat"] = await axe_problems(customer)
        for section in [
            "agents",
            "tenant",
            "policy",
            "plugins",
            "audit",
            "emergency",
            "embed",
            "e2e",
            "roles",
        ]:
            await admin.goto(gateway.base_url + "/admin#" + section)
            await expect(admin.locator("main h1")).not_to_be_empty()
            await admin.wait_for_load_state("networkidle")
            problems["admin " + section] = await axe_problems(admin)
    finally:
        await ctx_a.close()
        await ctx_c.close()
    found = {k: v for k, v in problems.items() if v}
    assert found == {}, found


async def test_keyboard_only_chat(browser, gateway):
    """Tab/Enter/Escape only: open the widget, fill the form, chat, close; the agent logs
    in, accepts and answers without a mouse."""
    await gateway.agent("ana@example.com", name="Ana")
    ctx_c, customer = await new_page(browser)
    ctx_a, ana = await new_page(browser)
    try:
        await customer.goto(gateway.base_url + "/demo")
        launcher = customer.locator("#cipherdesk-widget >> .launcher")
        await launcher.focus()
        await customer.keyboard.press("Enter")
        await expect(customer.locator("#cdw-name")).to_be_focused()  # focus moves in
        await customer.keyboard.type("Kim")
        await customer.keyboard.press("Tab")
        await expect(customer.locator("#cdw-email")).to_be_focused()
        await customer.keyboard.press("Tab")
        await expect(customer.locator("#cdw-topic")).to_be_focused()
        await customer.keyboard.press("Tab")
        await customer.keyboard.press("Enter")  # "Start chat"
        await expect(customer.locator("#cdw-input")).to_be_focused()
        await customer.keyboard.type("typed without a mouse")
        await customer.keyboard.press("Enter")
        await expect(customer.locator(".msg.me")).to_have_count(1)

        # The agent: log in with the keyboard, reach "Accept" with Tab, answer.
        await ana.goto(gateway.base_url + "/console")
        await expect(ana.locator("#login-email")).to_be_focused()
        await ana.keyboard.type("ana@example.com")
        await ana.keyboard.press("Tab")
        await ana.keyboard.type(gateway.passwords["ana@example.com"])
        await ana.keyboard.press("Tab")
        await ana.keyboard.type(gateway.otp("ana@example.com"))
        await ana.keyboard.press("Enter")
        accept = ana.locator(".queue-item button.primary")
        await expect(accept).to_be_visible()
        for _ in range(40):
            if await accept.evaluate("(el) => el === document.activeElement"):
                break
            await ana.keyboard.press("Tab")
        await expect(accept).to_be_focused()
        await ana.keyboard.press("Enter")
        reply = ana.locator(".chat-pane:not([hidden]) textarea.chat-input")
        await expect(reply).to_be_focused()  # accepting puts the cursor in the reply box
        await ana.keyboard.type("answered by keyboard")
        await ana.keyboard.press("Enter")
        await expect(customer.locator(".msg.agent .text")).to_have_text(["answered by keyboard"])

        # Escape closes the widget and gives focus back to the launcher.
        await customer.locator("#cdw-input").focus()
        await customer.keyboard.press("Escape")
        await expect(customer.locator("#cdw-panel")).to_be_hidden()
        await expect(launcher).to_be_focused()
    finally:
        await ctx_a.close()
        await ctx_c.close()
