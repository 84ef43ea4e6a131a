"""docs/PROTOCOL.md is what third-party SDKs code against: it must match the code."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

from crypto.channel import Channel
from crypto.identity import verify_hello
from gateway.protocol import CloseCode, decode_hello
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
