"""Files in an end-to-end chat, in real Chromium (issue 16.6, e2e mode): the widget
sniffs the photo, draws it again without its EXIF, seals it under the chat key and the
certified console shows it; the console sends a PDF the customer downloads. The gateway
holds ciphertext only: no name, no JPEG, no metadata."""

from __future__ import annotations

import pytest

from gateway.protocol import Msg
from tests.e2e import browser as bx
from tests.e2e.browser import customer_says, expect, login_console, new_page, open_widget
from tests.e2e.test_attachments import PDF, photo_with_gps
from tests.e2e.test_browser_e2e import _certify_console, _e2e_tenant

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway


async def test_files_both_ways_sealed_by_the_ends(browser, gateway, tmp_path):
    signing = await _e2e_tenant(gateway)
    await gateway.agent("ana@example.com", name="Ana")
    (ctx_a, ana), (ctx_c, customer) = [await new_page(browser) for _ in range(2)]
    photo = tmp_path / "收据 4111 1111 1111 1111.jpg"
    photo.write_bytes(photo_with_gps())
    pdf = tmp_path / "refund.pdf"
    pdf.write_bytes(PDF)
    try:
        await login_console(ana, gateway, "ana@example.com")
        await _certify_console(gateway, ana, "ana@example.com", signing)
        await open_widget(customer, gateway, name="Ada")
        await customer_says(customer, "hello")
        await ana.locator(".queue-item button", has_text="Accept").click()
        pane = ana.locator(".chat-pane:not([hidden])")
        await expect(pane.locator(".msg.them .text")).to_have_text(["hello"])

        # customer → agent: sniffed, stripped and sealed in the widget; opened in the console
        await customer.set_input_files("#cipherdesk-widget >> .file-input", str(photo))
        preview = pane.locator(".msg.them img.file-preview")
        await expect(preview).to_have_js_property("naturalWidth", 120)
        # the end policy masked the card number in the name before it was sealed
        name = await preview.get_attribute("alt")
        assert name is not None and "4111 1111 1111 1111" not in name and name.endswith(".jpg")
        # what the ends send of a photo: drawn again from its pixels, without EXIF (the
        # widget and console share CipherdeskFiles; the console exposes it to the page)
        redrawn = await ana.evaluate(
            "(b) => CipherdeskFiles.withoutMetadata(new Uint8Array(b), 'image/jpeg')"
            ".then((out) => Array.from(out))",
            list(photo.read_bytes()),
        )
        assert bytes(redrawn).startswith(b"\xff\xd8\xff")
        assert b"PhoneMaker" not in bytes(redrawn) and b"Zhang San" not in bytes(redrawn)
        await expect(customer.locator(".msg.me").last).to_have_attribute("data-state", "stored")

        # the gateway kept ciphertext: no JPEG, no name, no metadata
        chat = (await gateway.svc.store.list_chats("demo", states=("active",)))[-1]
        frames = await gateway.svc.chats.history(chat, 0)
        file = next(m.file for m in frames if isinstance(m, Msg) and m.file is not None)
        assert file.type == "application/vnd.cipherdesk.sealed" and file.name == ""
        stored = await gateway.svc.chats.read_attachment(chat, file.id)
        assert stored is not None and not stored.startswith(b"\xff\xd8")
        assert b"PhoneMaker" not in stored and b"JFIF" not in stored

        # agent → customer: a PDF, downloaded and opened in the widget
        await ana.set_input_files(".chat-pane:not([hidden]) .file-input", str(pdf))
        link = customer.locator(".msg.agent .file-open")
        await expect(customer.locator(".msg.agent .file-name")).to_have_text("refund.pdf")
        async with customer.expect_download() as fetched:
            await link.click()
        saved = await (await fetched.value).path()
        assert saved is not None and saved.read_bytes() == PDF
        await expect(pane.locator(".msg.me").last).to_have_attribute("data-state", "stored")
        for page in (ana, customer):
            assert page.js_errors == []  # type: ignore[attr-defined]
    finally:
        await ctx_a.close()
        await ctx_c.close()
