"""Rich but safe messages (issue 16 item 11) in a real browser, in English and Chinese:
line breaks survive in console and widget, an approved http(s) link the policy left intact
becomes an <a> with a safe rel and the exact href, a defanged link, ``<script>`` and
``javascript:`` stay inert text, emoji arrive and the font stack has an emoji face, and
the typing indicator still shows."""

from __future__ import annotations

import time

import aiohttp
import pytest

from tests.e2e import browser as bx
from tests.e2e.browser import agent_says, expect, login_console, new_page
from tests.gateway.helpers import bearer, login

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway

ACCEPT = {"en": "Accept", "zh-CN": "接入"}
LINK = "https://example.com/?q=1"
HOSTILE = "<script>window.pwned=1</script> javascript:window.pwned=2 <b>bold</b>"


async def _approve_example_links(gw: bx.Gateway) -> None:
    await gw.agent("boss@example.com", role="admin")
    async with aiohttp.ClientSession() as http:
        token = await login(
            http,
            gw.base_url,
            "boss@example.com",
            gw.passwords["boss@example.com"],
            gw.secrets["boss@example.com"],
            time.time(),
        )
        async with http.patch(
            gw.base_url + "/api/tenant",
            json={"allowed_link_domains": ["example.com"]},
            headers=bearer(token),
        ) as r:
            assert r.status == 200, await r.text()


async def _line_count(locator) -> int:
    """Rendered lines of an inline message body: distinct tops of its client rects."""
    return await locator.evaluate(
        "el => new Set([...el.getClientRects()].map((r) => Math.round(r.bottom))).size"
    )


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
async def test_rich_safe_messages(browser, gateway, lang):
    await _approve_example_links(gateway)
    await gateway.agent("ana@example.com", name="Ana")
    ctx_a, ana = await new_page(browser, locale=lang)
    ctx_c, customer = await new_page(browser, locale=lang)
    try:
        await login_console(ana, gateway, "ana@example.com")
        await customer.goto(gateway.base_url + "/demo")
        await customer.click("#cipherdesk-widget >> .launcher")
        await customer.fill("#cdw-name", "Ada")
        await customer.click(".prechat button[type=submit]")
        item = ana.locator(".queue-item")
        await expect(item).to_have_count(1)
        await item.locator("button", has_text=ACCEPT[lang]).click()
        pane = ana.locator(".chat-pane:not([hidden])")
        # "You joined this chat" is drawn from the frame the gateway sends once the console
        # is subscribed to the chat: typing before it would go to nobody (indicators are
        # live only, never replayed), which is what made this step flaky under load.
        await expect(pane.locator(".log .sys").first).to_be_visible()

        # typing indicator still works
        await customer.locator("#cdw-input").press_sequentially("hi")
        await expect(pane.locator(".typing")).to_be_visible()

        # customer: several lines with emoji; then a link (defanged by the policy) and
        # hostile text
        await customer.fill("#cdw-input", "first line\nsecond line\n😀 ok")
        await customer.press("#cdw-input", "Enter")
        body = pane.locator(".msg.them .text").last
        await expect(body).to_contain_text("😀 ok")
        assert await _line_count(body) == 3
        assert await body.evaluate("el => el.innerText") == "first line\nsecond line\n😀 ok"
        await customer.fill("#cdw-input", f"see https://evil.test/x {HOSTILE}")
        await customer.press("#cdw-input", "Enter")
        body = pane.locator(".msg.them .text").last
        await expect(body).to_contain_text("hxxps://evil[.]test/x")
        assert await body.locator("a").count() == 0  # a defanged link is text
        assert await body.locator("script, b").count() == 0
        text = await body.text_content()
        assert "<script>" in text and "javascript:window.pwned=2" in text

        # agent: an approved link becomes a safe anchor on both sides
        await agent_says(ana, f"Two lines 🎉\nread {LINK}.")
        for page, sel in ((customer, ".msg.agent .text"), (ana, ".msg.me .text")):
            reply = page.locator(sel).last
            await expect(reply).to_contain_text("🎉")
            assert await _line_count(reply) == 2
            anchor = reply.locator("a")
            await expect(anchor).to_have_count(1)
            await expect(anchor).to_have_attribute("href", LINK)
            await expect(anchor).to_have_text(LINK)  # the full stop is not part of it
            await expect(anchor).to_have_attribute("rel", "noopener noreferrer nofollow")
            await expect(anchor).to_have_attribute("target", "_blank")
            font = await reply.evaluate("el => getComputedStyle(el).fontFamily")
            assert "Noto Color Emoji" in font
        assert await customer.locator(".msg.me .text").last.locator("a").count() == 0
        for page in (ana, customer):
            assert await page.evaluate("() => window.pwned === undefined")
            assert page.js_errors == []  # type: ignore[attr-defined]
    finally:
        await ctx_a.close()
        await ctx_c.close()
