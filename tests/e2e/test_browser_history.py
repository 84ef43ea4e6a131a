"""The console's history view (issue 16 item 5) in a real browser, in English and Chinese:
a search finds a past chat by a word it contained, opening it shows the read-only
transcript, CSAT is shown (stars, average per agent), and an open chat of the same
verified customer lists the previous chats beside it."""

from __future__ import annotations

import time
import uuid

import aiohttp
import pytest

from auth.identity import sign_identity
from auth.roles import Principal, Role
from tests.e2e import browser as bx
from tests.e2e.browser import english_left, expect, login_console, new_page
from tests.gateway.helpers import bearer, login

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway

SECRET = "shop-identity-secret-" + "k" * 24
TEXT = {
    "en": {"title": "History", "rating4": "4 of 5 stars", "found": "1 chats shown"},
    "zh-CN": {"title": "历史会话", "rating4": "4 星（满分 5 星）", "found": "显示 1 个会话"},
}


async def _identity_on(gw: bx.Gateway) -> None:
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
            json={"identity_mode": "optional", "identity_secrets": [SECRET]},
            headers=bearer(token),
        ) as r:
            assert r.status == 200, await r.text()


async def _chat(gw: bx.Gateway, agent_id: str, lines: list[str], csat: int | None, sub: str):
    svc = gw.svc
    claims = {"sub": sub, "name": "Ada Lovelace", "exp": int(time.time()) + 60}
    token = sign_identity(SECRET, {**claims, "nonce": uuid.uuid4().hex})
    opened = await svc.chats.open_chat("demo", identity_token=token)
    principal = Principal(agent_id=agent_id, tenant_id="demo", role=Role("agent"))
    chat = await svc.chats.accept(principal, opened.chat.id)
    for i, line in enumerate(lines):
        await svc.chats.post_customer_message("demo", chat.id, f"m{i}", line, chat)
    if csat is not None:
        await svc.chats.close(chat.id, "demo", by="customer", csat=csat)
        await svc.chats.search_indexer.run_once()  # the node's indexer, without its interval
    return chat.id


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
async def test_history_search_transcript_and_csat(browser, gateway, lang):
    words = TEXT[lang]
    await _identity_on(gateway)
    ana = await gateway.agent("ana@example.com", name="Ana")
    await _chat(gateway, ana, ["my parcel never arrived", "订单号 丢失"], 4, "u-7")
    await _chat(gateway, ana, ["unrelated question about sizes"], 2, "u-8")
    await _chat(gateway, ana, ["I am back about the parcel"], None, "u-7")  # open
    ctx, page = await new_page(browser, locale=lang)
    try:
        await login_console(page, gateway, "ana@example.com")

        # the open chat of the same verified customer lists the previous chat and its CSAT
        pane = page.locator(".chat-pane")
        await expect(pane.locator(".previous-chats li")).to_have_count(1)
        await expect(pane.locator(".previous-chats .csat")).to_have_attribute(
            "aria-label", words["rating4"]
        )

        await page.locator("#history-toggle").click()
        await expect(page.locator("#history-toggle")).to_have_text(words["title"])
        view = page.locator(".history-view")
        await expect(view.locator(".history-item")).to_have_count(2)
        await expect(view.locator(".history-csat tbody tr")).to_have_count(1)
        await expect(view.locator(".history-csat tbody td").nth(1)).to_have_text("3")

        query = "parcel" if lang == "en" else "丢失"
        await view.locator("input[name=q]").fill(query)
        await view.locator("form.history-filters button[type=submit]").click()
        item = view.locator(".history-item")
        await expect(item).to_have_count(1)
        await expect(view.locator("p[role=status]")).to_have_text(words["found"])
        await expect(item.locator(".csat")).to_have_attribute("aria-label", words["rating4"])
        await expect(item).to_contain_text("Ada Lovelace")

        await item.locator("button").click()
        transcript = view.locator(".history-transcript")
        await expect(transcript.locator(".msg .text")).to_have_text(
            ["my parcel never arrived", "订单号 丢失"]
        )
        await expect(transcript.locator(".csat")).to_have_text("★★★★☆")
        assert await transcript.locator("textarea, input").count() == 0  # read-only
        if lang == "zh-CN":  # the whole view is translated (data such as names aside)
            assert await english_left(page, ("cipherdesk", "Ada Lovelace")) == []
        assert page.js_errors == []  # type: ignore[attr-defined]
    finally:
        await ctx.close()
