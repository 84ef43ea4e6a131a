"""docs/PROTOCOL.md is what third-party SDKs code against: it must match the code."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import nacl.public

from crypto.channel import Channel
from crypto.e2e import (
    SignedCertificate,
    open_message,
    unwrap_chat_key,
    verify_certificate,
    verify_franking,
)
from crypto.identity import verify_hello
from gateway.protocol import CloseCode, decode_hello
from tests.gateway.e2e_example import BEGIN as E2E_BEGIN
from tests.gateway.e2e_example import END as E2E_END
from tests.gateway.e2e_example import example_block as e2e_example_block
from tests.gateway.protocol_example import BEGIN, END, example_block

DOC = Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md"


def test_doc_embeds_the_example_the_code_produces() -> None:
    text = DOC.read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    assert text[start:end] == example_block(), (
        "docs/PROTOCOL.md is stale: run `python -m tests.gateway.protocol_example`"
    )


def test_example_hello_signature_verifies_and_frames_open() -> None:
    lines = example_block().splitlines()
    verify_key = next(x for x in lines if x.startswith("gateway verify key")).split(": ", 1)[1]
    hello = decode_hello(next(x for x in lines if x.startswith("S→C")).split(" ", 1)[1])
    assert verify_hello(verify_key, hello.sid, hello.server_pk, hello.sig)
    assert not verify_hello(verify_key, hello.sid + "x", hello.server_pk, hello.sig)
    shared = bytes.fromhex(
        next(x for x in lines if x.startswith("shared key")).split(":", 1)[1].strip()
    )
    server = Channel.server(shared)
    client_frames = [json.loads(line.split(" ", 1)[1]) for line in lines if line.startswith("C→S")]
    opened = [
        server.open(f["n"], base64.b64decode(f["c"])) for f in client_frames if f["t"] == "sealed"
    ]
    assert json.loads(opened[0])["t"] == "open"
    assert json.loads(opened[1])["text"].endswith("1111 1111")


def test_every_close_code_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name, value in vars(CloseCode).items():
        if name.isupper():
            assert re.search(rf"\b{value}\b", text), f"close code {name}={value} not documented"


def test_doc_embeds_the_e2e_example_the_code_produces() -> None:
    text = DOC.read_text(encoding="utf-8")
    start, end = text.index(E2E_BEGIN), text.index(E2E_END) + len(E2E_END)
    assert text[start:end] == e2e_example_block(), (
        "docs/PROTOCOL.md is stale: run `python -m tests.gateway.e2e_example`"
    )


def test_the_e2e_example_verifies_like_an_end_would() -> None:
    """An SDK author's check: the certificate verifies under the printed tenant key, the
    wrap opens with the printed device key, the message opens, the report's franking holds."""
    lines = e2e_example_block().splitlines()
    value = {x.split(":", 1)[0]: x.split(":", 1)[1].strip() for x in lines if ": " in x[:40]}
    frames = [
        json.loads(x.split(" ", 1)[1]) for x in lines if x[:3] in ("S→C", "C→S", "S→A", "A→S")
    ]
    members, _wrap, ckeys, _emsg, msg, report, reported = frames
    device = members["devices"][0]
    cert = verify_certificate(
        value["tenant verify key (data-tenant-key)"],
        SignedCertificate(device["cert"], device["sig"]),
        now=1_795_420_800,
        tenant="acme",
    )
    secret = nacl.public.PrivateKey(bytes.fromhex(value["device secret key (hex)"]))
    assert cert.public_key == base64.b64encode(bytes(secret.public_key)).decode()
    key = unwrap_chat_key(ckeys["keys"][0]["k"], secret, chat=msg["chat"], epoch=1)
    assert key.hex() == value["chat key, epoch 1 (hex)"]
    opened = open_message(
        key,
        c=msg["c"],
        fc=msg["fc"],
        chat=msg["chat"],
        sender="customer",
        msg_id=msg["id"],
        epoch=1,
    )
    assert opened.text == report["text"] and opened.franking_key == report["fk"]
    assert verify_franking(
        [bytes.fromhex(value["gateway franking secret (hex)"])],
        chat=msg["chat"],
        sender="customer",
        msg_id=msg["id"],
        seq=msg["seq"],
        ts=msg["ts"],
        fc=msg["fc"],
        gt=report["gt"],
        text=report["text"],
        franking_key=report["fk"],
    )
    assert reported["verified"] is True
