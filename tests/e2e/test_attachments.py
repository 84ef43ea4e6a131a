"""Attachments over real sockets and HTTP (issue 16.6): a customer sends a photo, the
agent gets it without its metadata, both read it back; names pass the policy; refusals
have their documented codes; clamd (a protocol-true fake) decides about malware; erasure
takes the files with the chat."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from crypto.encoding import b64decode
from gateway.attachments.tickets import seal_upload
from gateway.protocol import CustomerUpload, Msg, Notice
from gateway.sdk.client import ServerError
from gateway.sdk.files import FileError, http_base, post_file
from tests.e2e.conftest import SocketGateway, running_gateway
from tests.plugins.fake_clamd import EICAR, FakeClamd

CARD = "4111 1111 1111 1111"


def photo_with_gps() -> bytes:
    """A JPEG as a phone takes it: camera make, owner and a GPS position in EXIF."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x013B] = "Zhang San"  # Artist
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (39.0, 54.0, 27.0)  # GPSLatitudeRef, GPSLatitude
    exif[0x8825] = gps
    out = io.BytesIO()
    Image.new("RGB", (120, 80), (30, 120, 200)).save(out, "JPEG", exif=exif)
    return out.getvalue()


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


async def test_photo_reaches_the_agent_without_its_metadata(gw: SocketGateway) -> None:
    await gw.svc.plugins.configure(
        "demo",
        "webhook",
        {"url": "https://hooks.example.test/f", "secret": "s" * 32, "events": ["chat.message"]},
    )
    agent = await gw.agent("alice@example.com")
    customer, welcome = await gw.accepted_chat(agent)
    photo = photo_with_gps()
    assert b"Zhang San" in photo and b"PhoneMaker" in photo

    sent = await customer.send_file("收据 receipt.jpg", photo)
    assert sent.seq == 1 and sent.chat == welcome.chat and sent.notice is None
    got = await agent.wait_for(lambda f: isinstance(f, Msg) and f.file is not None)
    assert got.file is not None and got.sender == "customer"
    assert (got.file.name, got.file.type, got.file.w, got.file.h) == (
        "收据 receipt.jpg",
        "image/jpeg",
        120,
        80,
    )
    assert got.text == "收据 receipt.jpg"  # readers that know no files see the name

    stored = await agent.fetch_file(welcome.chat, got.file.id)
    assert len(stored) == got.file.size
    assert b"Zhang San" not in stored and b"PhoneMaker" not in stored
    image = Image.open(io.BytesIO(stored))
    assert image.format == "JPEG" and image.size == (120, 80) and not dict(image.getexif())
    assert await customer.fetch_file(got.file.id) == stored  # the sender reads the same

    # the agent answers with a PDF; the customer sees a file message
    back = await agent.send_file(welcome.chat, "退款说明.pdf", PDF)
    seen = await customer.wait_for(lambda f: isinstance(f, Msg) and f.seq == back.seq)
    assert seen.file is not None and seen.file.type == "application/pdf"
    assert await customer.fetch_file(seen.file.id) == PDF

    # a resume replays the file message with its reference
    history = await gw.svc.chats.history(await gw.svc.store.get_chat(welcome.chat), 0)
    assert [m.file.type if m.file else None for m in history] == ["image/jpeg", "application/pdf"]

    # plugins learn that a file was sent (name, type, size), never its bytes
    events = [
        await gw.svc.plugins.decode(i) for i in await gw.svc.store.list_events(tenant_id="demo")
    ]
    posted = [e for e in events if e and e.get("attachment_type")]
    assert [(e["text"], e["attachment_type"]) for e in posted] == [
        ("收据 receipt.jpg", "image/jpeg"),
        ("退款说明.pdf", "application/pdf"),
    ]
    assert posted[0]["attachment_size"] == len(stored)

    # at rest: neither the name nor the bytes in the database file
    raw = b"".join(p.read_bytes() for p in (gw.tmp / "data").glob("cipherdesk.db*"))
    assert "收据".encode() not in raw and stored[200:264] not in raw and PDF not in raw
    for client in (customer, agent):
        await client.aclose()


async def test_a_resent_upload_is_stored_once(gw: SocketGateway) -> None:
    agent = await gw.agent("alice@example.com")
    customer, welcome = await gw.accepted_chat(agent)
    first = await customer.send_file("a.pdf", PDF, msg_id="m-file-1")
    again = await customer.send_file("a.pdf", PDF, msg_id="m-file-1")
    assert (again.seq, again.duplicate) == (first.seq, True)
    chat = await gw.svc.store.get_chat(welcome.chat)
    assert chat is not None and chat.last_seq == 1
    for client in (customer, agent):
        await client.aclose()


async def test_file_names_pass_the_policy(gw: SocketGateway) -> None:
    agent = await gw.agent("alice@example.com")
    customer, welcome = await gw.accepted_chat(agent)
    sent = await customer.send_file(f"card {CARD}.pdf", PDF)
    assert sent.notice is not None and sent.notice["action"] == "masked"
    got = await agent.wait_for(lambda f: isinstance(f, Msg) and f.file is not None)
    assert got.file is not None and CARD not in got.file.name and got.file.name.endswith(".pdf")

    # an agent may not send a card number, as a file name either: nothing is stored
    with pytest.raises(FileError) as refused:
        await agent.send_file(welcome.chat, f"your card {CARD}.pdf", PDF)
    assert (refused.value.status, refused.value.code) == (422, "blocked")
    assert "card" in refused.value.kinds
    chat = await gw.svc.store.get_chat(welcome.chat)
    assert chat is not None and chat.last_seq == 1
    for client in (customer, agent):
        await client.aclose()


async def test_refusals_have_their_codes(gw: SocketGateway) -> None:
    agent = await gw.agent("alice@example.com")
    customer, welcome = await gw.accepted_chat(agent)

    with pytest.raises(FileError) as not_an_image:  # an executable named like a photo
        await customer.send_file("holiday.jpg", b"MZ\x90\x00" + b"\0" * 200)
    assert (not_an_image.value.status, not_an_image.value.code) == (415, "file_type")

    with pytest.raises(ServerError) as too_big:  # refused before any byte is sent
        await customer.send_file("big.pdf", b"%PDF-" + b"x" * (5 * 1024 * 1024))
    assert too_big.value.code == "file_too_big"

    # the body must be what the ticket announced, sealed with its key
    ticket = await customer._request(CustomerUpload(id="m-x", size=len(PDF)), "m-x", 5)
    most = len(PDF) + 2 + 1020 + 40  # file, name length, longest name, sealing
    base = http_base(customer.url)
    async with aiohttp.ClientSession() as http:
        async with http.post(base + ticket.url, data=b"\0" * (len(PDF) + 48)) as resp:
            assert resp.status == 400 and (await resp.json())["error"]["code"] == "bad_body"
        async with http.post(base + ticket.url, data=b"\0" * (most + 1)) as resp:
            assert resp.status == 413
        key = b64decode(ticket.key)  # sealed right, but not the announced size / no name
        for body, code in (
            (seal_upload(key, "x.pdf", PDF + b"x"), "bad_body"),
            (seal_upload(key, "\u202e", PDF), "bad_name"),
        ):
            async with http.post(base + ticket.url, data=body) as resp:
                assert resp.status == 400 and (await resp.json())["error"]["code"] == code
        async with http.post(
            base + ticket.url, data=b"\0" * 50, headers={"Origin": "https://evil.example"}
        ) as resp:
            assert resp.status == 403 and (await resp.json())["error"]["code"] == "forbidden"
        forged = ticket.url[:-4] + ("AAAA" if not ticket.url.endswith("AAAA") else "BBBB")
        async with http.post(base + forged, data=b"x") as resp:
            assert resp.status == 403 and (await resp.json())["error"]["code"] == "ticket_invalid"
        async with http.get(base + ticket.url) as resp:  # an upload ticket reads nothing
            assert resp.status == 403

    # a chat that was closed in between refuses the upload; nothing is stored
    await agent.close_chat(welcome.chat)
    with pytest.raises(FileError) as closed:
        await post_file(base, ticket, "x.pdf", PDF, customer.origin)
    assert (closed.value.status, closed.value.code) == (409, "chat_closed")

    # a tenant that switched files off refuses the ticket
    await gw.update_tenant_settings(attachments={"enabled": False})
    other, _ = await gw.accepted_chat(agent)
    with pytest.raises(ServerError) as off:
        await other.send_file("a.pdf", PDF)
    assert off.value.code == "files_off"
    for client in (customer, other, agent):
        await client.aclose()


async def test_other_chats_files_stay_closed(gw: SocketGateway) -> None:
    alice = await gw.agent("alice@example.com")
    bob = await gw.agent("bob@example.com")
    customer, welcome = await gw.accepted_chat(alice)
    sent = await customer.send_file("a.pdf", PDF)
    got = await alice.wait_for(lambda f: isinstance(f, Msg) and f.seq == sent.seq)
    assert got.file is not None
    with pytest.raises(ServerError) as refused:  # bob neither holds nor may read the chat
        await bob.fetch_file(welcome.chat, got.file.id)
    assert refused.value.code == "forbidden"

    # another customer's chat cannot name this file
    stranger, _ = await gw.accepted_chat(bob)
    with pytest.raises(FileError) as missing:
        await stranger.fetch_file(got.file.id)
    assert (missing.value.status, missing.value.code) == (404, "not_found")

    # erasing the chat takes its files
    await gw.svc.chats.erase(welcome.chat, actor="test")
    assert await gw.svc.store.get_attachment(welcome.chat, got.file.id) is None
    for client in (customer, stranger, alice, bob):
        await client.aclose()


@contextlib.asynccontextmanager
async def gateway_with_clamd(tmp_path: Path, clamd: FakeClamd) -> AsyncIterator[SocketGateway]:
    async with running_gateway(
        tmp_path, attachments={"clamd": f"tcp:127.0.0.1:{clamd.port}"}
    ) as gateway:
        yield gateway


async def test_clamd_refuses_malware_and_its_absence_fails_closed(tmp_path: Path) -> None:
    async with FakeClamd() as clamd, gateway_with_clamd(tmp_path, clamd) as gw:
        agent = await gw.agent("alice@example.com")
        customer, welcome = await gw.accepted_chat(agent)
        await customer.send_file("clean.pdf", PDF)
        assert clamd.scanned == [PDF]

        infected = b"%PDF-1.4\n" + EICAR + b"\n%%EOF\n"
        with pytest.raises(FileError) as refused:
            await customer.send_file("invoice.pdf", infected)
        assert (refused.value.status, refused.value.code) == (422, "file_infected")
        actions = [
            e.action
            for e in await gw.svc.store.query_audit(tenant_id="demo", action="attachment.infected")
        ]
        assert actions == ["attachment.infected"]

        await clamd.stop()
        with pytest.raises(FileError) as down:
            await customer.send_file("later.pdf", PDF)
        assert (down.value.status, down.value.code) == (503, "scan_unavailable")
        chat = await gw.svc.store.get_chat(welcome.chat)
        assert chat is not None and chat.last_seq == 1  # only the clean file was stored
        for client in (customer, agent):
            await client.aclose()


async def test_notice_frames_are_not_sent_for_files(gw: SocketGateway) -> None:
    """The upload's answer carries the masking notice; the socket gets no stray notice
    for a message id it never sent as text."""
    agent = await gw.agent("alice@example.com")
    customer, _ = await gw.accepted_chat(agent)
    await customer.send_file(f"card {CARD}.pdf", PDF)
    await customer.ping()
    assert not [f for f in customer.drain() if isinstance(f, Notice)]
    await asyncio.gather(customer.aclose(), agent.aclose())


async def test_tenant_admin_narrows_the_limits(gw: SocketGateway) -> None:
    await gw.login("root@example.com", role="admin")
    auth = {"Authorization": f"Bearer {gw.tokens['root@example.com']}"}
    url = gw.base + "/api/governance/settings"
    async with aiohttp.ClientSession() as http:
        async with http.put(url, json={"attachments": {"max_bytes": 10}}, headers=auth) as resp:
            assert resp.status == 400 and (await resp.json())["error"]["field"] == "attachments"
        async with http.put(url, json={"attachments": {"max_bytes": 2048}}, headers=auth) as resp:
            assert resp.status == 200
            limits = (await resp.json())["settings"]["attachments"]
    assert limits["enabled"] is True and limits["max_bytes"] == 2048
    assert "application/pdf" in limits["types"]
    agent = await gw.agent("alice@example.com")
    customer, _ = await gw.accepted_chat(agent)
    with pytest.raises(ServerError) as too_big:
        await customer.send_file("a.pdf", b"%PDF-" + b"x" * 3000 + b"%%EOF")
    assert too_big.value.code == "file_too_big"
    assert (await customer.send_file("small.pdf", PDF)).seq == 1
    await asyncio.gather(customer.aclose(), agent.aclose())


async def test_uploads_in_flight_are_bounded_per_node(gw: SocketGateway) -> None:
    agent = await gw.agent("alice@example.com")
    customer, _ = await gw.accepted_chat(agent)
    slots = gw.svc.config.attachments.concurrent_uploads
    with contextlib.ExitStack() as taken:
        for _ in range(slots):  # every slot held, as by slow uploads
            taken.enter_context(gw.svc.attachments.upload_slot())
        with pytest.raises(FileError) as busy:
            await customer.send_file("a.pdf", PDF, msg_id="m-busy")
        assert (busy.value.status, busy.value.code) == (503, "busy")
    # nothing was lost: the same message goes through once a slot is free
    sent = await customer.send_file("a.pdf", PDF, msg_id="m-busy")
    assert sent.seq == 1 and not sent.duplicate
    await asyncio.gather(customer.aclose(), agent.aclose())
