"""Files in end-to-end chats (issue 16.6, e2e mode), with the SDK ends over real sockets:
the bytes are sealed by the sender's end under the chat key, the gateway stores and
relays ciphertext only (never the name, type or pixels), the message that names the file
is franked like a text, and readers check the bytes against it."""

from __future__ import annotations

import logging

import pytest

from crypto.e2e import (
    E2EError,
    FileRecord,
    open_file_content,
    parse_file_text,
    seal_file_content,
)
from gateway.protocol import AgentSealedMsg, CustomerUpload
from gateway.sdk.client import ServerError
from gateway.sdk.files import FileError, http_base, post_file
from tests.e2e.test_attachments import PDF, photo_with_gps
from tests.e2e.test_e2e_mode import E2ETenant, _msg, e2e  # noqa: F401  (fixture)

NAME = "身份证正面 张伟.jpg"


async def test_files_travel_sealed_by_the_ends(
    e2e: E2ETenant,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    agent = await e2e.staff("ana@example.com")
    customer, chat = await e2e.chat_with(agent)
    photo = photo_with_gps()

    ack = await customer.send_file(NAME, photo, content_type="image/jpeg")
    relayed = await _msg(agent, ack.seq, chat)
    assert relayed.file is not None and relayed.text == "" and relayed.c
    assert relayed.file.type == "application/vnd.cipherdesk.sealed"  # the gateway's view
    assert relayed.file.name == "" and relayed.file.size == len(photo) + 40
    record, data = await agent.read_file(relayed)
    assert (record.name, record.type, record.size) == (NAME, "image/jpeg", len(photo))
    assert data == photo  # the ends decide about metadata; the gateway cannot see it

    # the agent answers with a PDF the customer reads
    back = await agent.send_file(chat, "退款单.pdf", PDF, content_type="application/pdf")
    seen = await _msg(customer, back.seq)
    assert (await customer.read_file(seen))[1] == PDF

    # a report of the file message commits to the file's hash (franked record)
    verdict = await customer.report(seen)
    assert verdict.verified
    opened = customer.read(seen)
    assert parse_file_text(opened.text) is not None

    # the gateway kept ciphertext only: no name, no pixels, no PDF, in the database or logs
    stored = b"".join(p.read_bytes() for p in (e2e.gw.tmp / "data").glob("cipherdesk.db*"))
    for needle in (NAME.encode(), "退款单".encode(), photo[300:364], PDF[:24]):
        assert needle not in stored
        assert needle.decode("utf-8", "replace") not in caplog.text
    for client in (customer, agent):
        await client.aclose()


async def test_a_message_can_only_name_its_own_upload(e2e: E2ETenant) -> None:  # noqa: F811
    agent = await e2e.staff("ana@example.com")
    customer, chat = await e2e.chat_with(agent)
    ack = await customer.send_file("a.pdf", PDF, content_type="application/pdf")
    relayed = await _msg(agent, ack.seq, chat)
    assert relayed.file is not None

    # the agent cannot pass the customer's upload off as its own message
    keys = agent.chat_keys[chat]
    forged = AgentSealedMsg(
        chat=chat, id="forged-1", c=relayed.c, fc=relayed.fc, e=max(keys), file=relayed.file.id
    )
    with pytest.raises(ServerError) as refused:
        await agent._request(forged, "forged-1", 5)
    assert refused.value.code == "bad_file"

    # the gateway wants no name for an e2e upload (it would learn it)
    ticket = await customer._request(CustomerUpload(id="named-1", size=len(PDF)), "named-1", 5)
    with pytest.raises(FileError) as named:
        await post_file(http_base(customer.url), ticket, "visible.pdf", PDF, customer.origin)
    assert (named.value.status, named.value.code) == (400, "bad_name")

    # a record that does not match the bytes is refused by the reader
    key = keys[max(keys)]
    body = seal_file_content(key, PDF)
    with pytest.raises(E2EError):
        open_file_content(key, body, FileRecord("a.pdf", "application/pdf", len(PDF), "A" * 44))
    with pytest.raises(E2EError):
        open_file_content(key, body[:-1] + b"x", FileRecord("a.pdf", "x", len(PDF), "A" * 44))
    for client in (customer, agent):
        await client.aclose()
