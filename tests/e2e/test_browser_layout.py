"""Layout in real Chromium at desktop size and on a 390×844 phone, English and Chinese:
no horizontal overflow on console and admin; the console's message list scrolls while
the reply box stays in view (regression: the page grew instead)."""

from __future__ import annotations

import pytest

from tests.e2e import browser as bx
from tests.e2e.browser import (
    DESKTOP,
    PHONE_390,
    expect,
    login_console,
    new_page,
    open_widget_form,
    screenshot,
)

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway

OVERFLOW_JS = """() => ({
  page: document.documentElement.scrollWidth, view: window.innerWidth,
  tall: document.scrollingElement.scrollHeight, viewH: window.innerHeight,
  wide: [...document.querySelectorAll('.topbar > *, form, .panel, .chat-head, .composer')]
    .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1)
    .map((el) => el.className || el.tagName),
})"""

VIEWPORTS = [(DESKTOP, "desktop"), (PHONE_390, "phone")]


@pytest.mark.parametrize(("viewport", "size"), VIEWPORTS, ids=["desktop", "phone"])
@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
async def test_console_reply_box_stays_in_view(browser, gateway, viewport, size, locale):
    await gateway.agent("ana@example.com", name="Ana")
    ctx_a, ana = await new_page(browser, viewport=viewport, locale=locale)
    ctx_c, customer = await new_page(browser, locale=locale)
    try:
        await login_console(ana, gateway, "ana@example.com")
        await open_widget_form(customer, gateway, name="Ada", topic=None)
        await ana.locator(".queue-item button.primary").click()
        pane = ana.locator(".chat-pane:not([hidden])")
        await expect(pane.locator("textarea.chat-input")).to_be_visible()
        # A long chat: 60 more bubbles in the message list.
        await ana.evaluate("""() => {
          const log = document.querySelector('.chat-pane:not([hidden]) .log');
          for (let i = 0; i < 60; i++) {
            const p = document.createElement('div');
            p.className = 'msg them';
            p.textContent = 'line ' + i + ' of a long conversation\\nwith two lines';
            log.appendChild(p);
          }
          log.scrollTop = log.scrollHeight;
        }""")
        box = await pane.locator("textarea.chat-input").bounding_box()
        assert box is not None and box["y"] + box["height"] <= viewport["height"], box
        m = await ana.evaluate(OVERFLOW_JS)
        assert m["tall"] <= m["viewH"] + 1, m  # the page does not grow
        assert m["page"] <= m["view"] and m["wide"] == [], m
        log_scrolls = await pane.locator(".log").evaluate(
            "(el) => el.scrollHeight > el.clientHeight && el.scrollTop > 0"
        )
        assert log_scrolls
        await screenshot(ana, f"console-long-{locale}-{size}")
    finally:
        await ctx_a.close()
        await ctx_c.close()


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
async def test_admin_fits_a_phone(browser, gateway, locale):
    await gateway.agent("root@example.com", role="admin", name="Root")
    ctx, page = await new_page(browser, viewport=PHONE_390, locale=locale)
    try:
        await login_console(page, gateway, "root@example.com", path="/admin")
        for section in ["agents", "tenant", "policy", "plugins", "audit", "emergency", "embed"]:
            await page.goto(gateway.base_url + "/admin#" + section)
            # Measure the section once all its panels are rendered (the policy tables
            # arrive after a fetch; measuring earlier missed their overflow at 390 px).
            done = page.locator(f'main[data-section="{section}"][aria-busy="false"]')
            await expect(done).to_have_count(1)
            await expect(page.locator("main h1")).not_to_be_empty()
            m = await page.evaluate(OVERFLOW_JS)
            assert m["page"] <= m["view"] and m["wide"] == [], (section, m)
        await screenshot(page, f"admin-embed-{locale}-phone")
    finally:
        await ctx.close()
