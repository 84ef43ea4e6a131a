"""A signed-in customer in real Chromium, English and Chinese (issues 15.2 and the widget
identity): the host page hands the widget fresh identity tokens, the chat is verified
for agents, and after it the customer downloads their own conversations as a readable
page and as JSON — masked, built by the widget with DOM APIs — and as a PDF the gateway
renders in the customer's language."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import aiohttp
import pytest
from pypdf import PdfReader

from auth.identity import sign_identity
from auth.roles import Principal, Role
from tests.e2e import browser as bx
from tests.e2e.browser import customer_says, expect, new_page
from tests.gateway.helpers import bearer, login

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway

SECRET = "shop-identity-secret-" + "w" * 24
CARD = "4111 1111 1111 1111"
TITLE = {"en-US": "My conversations", "zh-CN": "我的会话记录"}
YOU = {"en-US": "You", "zh-CN": "您"}


def _token(sub: str) -> str:
    claims = {"sub": sub, "exp": int(time.time()) + 300, "nonce": uuid.uuid4().hex}
    return sign_identity(SECRET, claims)


async def _signed_customers(gw: bx.Gateway) -> None:
    email = "identity-admin@example.com"
    if email not in gw.passwords:
        await gw.agent(email, role="admin")
    async with aiohttp.ClientSession() as http:
        token = await login(
            http, gw.base_url, email, gw.passwords[email], gw.secrets[email], time.time()
        )
        async with http.patch(
            f"{gw.base_url}/api/tenant",
            json={"identity_mode": "optional", "identity_secrets": [SECRET]},
            headers=bearer(token),
        ) as r:
            assert r.status == 200, await r.text()


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
async def test_signed_in_customer_downloads_their_chats(browser, gateway, locale):
    await _signed_customers(gateway)
    svc = gateway.svc
    sub = f"cust-{locale.lower()}"
    agent_id = await gateway.agent(f"exp-agent-{locale.lower()}@example.com")
    ctx, page = await new_page(browser, locale=locale)
    try:
        await page.goto(gateway.base_url + "/demo")
        await page.wait_for_function("() => window.cipherdesk && window.cipherdesk.identify")
        tokens = [_token(sub) for _ in range(4)]
        await page.evaluate("toks => window.cipherdesk.identify(() => toks.shift())", tokens)
        await page.click("#cipherdesk-widget >> .launcher")
        await page.fill("#cdw-name", "Ada")
        await page.click(".prechat button[type=submit]")
        await customer_says(page, f"my card is {CARD}")
        await expect(page.locator(".msg.me")).to_have_count(1)
        chat = None
        for _ in range(100):
            queued = [c for c in await svc.store.list_chats("demo") if c.state == "queued"]
            if queued:
                chat = queued[0]
                break
            await asyncio.sleep(0.05)
        assert chat is not None and chat.verified  # the open carried the identity token
        agent = Principal(agent_id=agent_id, tenant_id="demo", role=Role.AGENT)
        await svc.chats.accept(agent, chat.id)
        await svc.chats.post_agent_message(agent, chat.id, "a1", "Thanks, <b>noted</b>")
        await svc.chats.close(chat.id, "demo", by="agent", principal=agent)

        tools = page.locator("#cipherdesk-widget >> .tools")
        await expect(tools).to_be_visible()
        async with page.expect_download() as info:
            await page.click("#cipherdesk-widget >> .export-html")
        html = (await (await info.value).path()).read_text("utf-8")
        assert html.startswith("<!doctype html>") and TITLE[locale] in html
        assert "**** **** **** 1111" in html and CARD not in html
        assert "&lt;b&gt;noted&lt;/b&gt;" in html and "<b>noted</b>" not in html  # text, not markup
        assert f"<strong>{YOU[locale]} · " in html and "undefined" not in html

        async with page.expect_download() as info:
            await page.click("#cipherdesk-widget >> .export-json")
        data = json.loads((await (await info.value).path()).read_text("utf-8"))
        assert [c["id"] for c in data["chats"]] == [chat.id]

        # The PDF is rendered by the gateway in the page's language.
        async with page.expect_download() as info:
            await page.click("#cipherdesk-widget >> .export-pdf")
        download = await info.value
        assert download.suggested_filename.endswith(".pdf")
        reader = PdfReader(await download.path())
        text = "\n".join(p.extract_text() for p in reader.pages)
        assert TITLE[locale] in text and f"{YOU[locale]} · " in text
        assert "**** **** **** 1111" in text and CARD not in text
        assert page.js_errors == []  # type: ignore[attr-defined]
    finally:
        await ctx.close()
