"""Attachments in real Chromium (issue 16.6), in English and Chinese, desktop and phone:
the customer picks a photo in the widget and the agent sees its preview (decrypted in
the page, shown from a blob: URL under the console's strict CSP), the agent answers with
a PDF the customer can download, a disguised executable is refused with a localised
reason and a retry, and what the gateway stored has no EXIF."""

from __future__ import annotations

import pytest

from gateway.protocol import Msg
from tests.e2e import browser as bx
from tests.e2e.browser import expect, login_console, new_page, screenshot
from tests.e2e.test_attachments import PDF, photo_with_gps
from tests.e2e.test_browser_a11y import HAVE_AXE, a11y_page, axe_problems

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway

ACCEPT = {"en": "Accept", "zh-CN": "接入"}
DOWNLOAD = {"en": "Download", "zh-CN": "下载"}
REFUSED = {"en": "Only images", "zh-CN": "只能发送图片"}


@pytest.mark.parametrize(("lang", "viewport"), [("en", bx.DESKTOP), ("zh-CN", bx.PHONE_390)])
async def test_photo_and_pdf_both_ways(browser, gateway, lang, viewport, tmp_path):
    await gateway.agent(f"ana-{lang}@example.com", name="Ana")
    ctx_a, ana = await new_page(browser, locale=lang)
    ctx_c, customer = await new_page(browser, locale=lang, viewport=viewport)
    photo = tmp_path / "收据.jpg"
    photo.write_bytes(photo_with_gps())
    pdf = tmp_path / "refund.pdf"
    pdf.write_bytes(PDF)
    fake = tmp_path / "holiday.jpg"
    fake.write_bytes(b"MZ\x90\x00" + b"\0" * 256)
    try:
        await login_console(ana, gateway, f"ana-{lang}@example.com")
        await customer.goto(gateway.base_url + "/demo")
        await customer.click("#cipherdesk-widget >> .launcher")
        await customer.fill("#cdw-name", "Ada")
        await customer.click(".prechat button[type=submit]")
        item = ana.locator(".queue-item")
        await expect(item).to_have_count(1)
        await item.locator("button", has_text=ACCEPT[lang]).click()
        pane = ana.locator(".chat-pane:not([hidden])")
        await expect(pane.locator(".log .sys").first).to_be_visible()
        # the header names the customer and nothing else ("null" was printed once)
        await expect(pane.locator(".chat-title")).not_to_contain_text("null")
        await expect(customer.locator(".composer .attach")).to_be_visible()

        # customer → agent: the photo's preview on both sides
        await customer.set_input_files("#cipherdesk-widget >> .file-input", str(photo))
        preview = pane.locator(".msg.them img.file-preview")
        await expect(preview).to_have_attribute("alt", "收据.jpg")
        await expect(preview).to_have_js_property("naturalWidth", 120)
        assert (await preview.get_attribute("src") or "").startswith("blob:")
        own = customer.locator(".msg.me img.file-preview")
        await expect(own).to_have_js_property("naturalWidth", 120)
        await expect(customer.locator(".msg.me").last).to_have_attribute("data-state", "stored")

        # what the gateway stored is the photo without its metadata
        chat = (await gateway.svc.store.list_chats("demo", states=("active",)))[-1]
        frames = await gateway.svc.chats.history(chat, 0)
        file = next(m.file for m in frames if isinstance(m, Msg) and m.file is not None)
        stored = await gateway.svc.chats.read_attachment(chat, file.id)
        assert stored is not None and b"Zhang San" not in stored and b"PhoneMaker" not in stored

        # agent → customer: a PDF, downloaded on request
        await ana.set_input_files(".chat-pane:not([hidden]) .file-input", str(pdf))
        link = customer.locator(".msg.agent .file-open")
        await expect(link).to_contain_text(DOWNLOAD[lang])
        await expect(customer.locator(".msg.agent .file-name")).to_have_text("refund.pdf")
        async with customer.expect_download() as fetched:
            await link.click()
        download = await fetched.value
        assert download.suggested_filename == "refund.pdf"
        saved = await download.path()
        assert saved is not None and saved.read_bytes() == PDF

        # a disguised executable: refused, said in the customer's language, retry offered
        await customer.set_input_files("#cipherdesk-widget >> .file-input", str(fake))
        await expect(customer.locator(".sys.notice").last).to_contain_text(REFUSED[lang])
        failed = customer.locator(".msg.me[data-state=failed]")
        await expect(failed.locator(".fix-retry")).to_be_visible()
        await screenshot(customer, f"widget-attachments-{lang}")
        await screenshot(ana, f"console-attachments-{lang}")

        # once closed, the chat's history shows the photo again (fetched over the socket)
        await pane.locator(".chat-actions button.danger").click()
        await ana.locator("#history-toggle").click()
        view = ana.locator(".history-view")
        await view.locator(".history-item button").first.click()
        again = view.locator(".history-transcript img.file-preview")
        await expect(again).to_have_js_property("naturalWidth", 120)
        await expect(view.locator(".history-transcript .file-name")).to_have_text(
            ["收据.jpg", "refund.pdf"]
        )
        assert ana.js_errors == []  # type: ignore[attr-defined]
        # The browser logs the refused upload's HTTP status; nothing else went wrong.
        assert [e for e in customer.js_errors if "status of 415" not in e] == []  # type: ignore[attr-defined]
        assert len(customer.js_errors) == 1  # type: ignore[attr-defined]
    finally:
        await ctx_a.close()
        await ctx_c.close()


async def test_axe_on_file_messages(browser, gateway, tmp_path):
    """axe-core: no serious/critical violation once photos and PDFs are in the chat, in
    the widget and the console (zh-CN)."""
    if not HAVE_AXE:
        pytest.skip("axe-core is not installed (npm ci)")
    await gateway.agent("axe@example.com", name="Ana")
    ctx_a, ana = await a11y_page(browser, "zh-CN")
    ctx_c, customer = await a11y_page(browser, "zh-CN")
    photo = tmp_path / "收据.jpg"
    photo.write_bytes(photo_with_gps())
    pdf = tmp_path / "refund.pdf"
    pdf.write_bytes(PDF)
    try:
        await login_console(ana, gateway, "axe@example.com")
        await customer.goto(gateway.base_url + "/demo")
        await customer.click("#cipherdesk-widget >> .launcher")
        await customer.click(".prechat button[type=submit]")
        await ana.locator(".queue-item button", has_text=ACCEPT["zh-CN"]).last.click()
        pane = ana.locator(".chat-pane:not([hidden])")
        await expect(pane.locator(".log .sys").first).to_be_visible()
        await customer.set_input_files("#cipherdesk-widget >> .file-input", str(photo))
        await expect(pane.locator(".msg.them img.file-preview")).to_have_js_property(
            "naturalWidth", 120
        )
        await ana.set_input_files(".chat-pane:not([hidden]) .file-input", str(pdf))
        await expect(customer.locator(".msg.agent .file-name")).to_have_text("refund.pdf")
        problems = {"widget": await axe_problems(customer), "console": await axe_problems(ana)}
        assert problems == {"widget": [], "console": []}
    finally:
        await ctx_a.close()
        await ctx_c.close()
