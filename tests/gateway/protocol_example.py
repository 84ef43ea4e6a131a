"""Produce the example exchange embedded in docs/PROTOCOL.md from the real code.

Run ``python -m tests.gateway.protocol_example`` to print the Markdown block; the test
``test_protocol_doc.py`` fails when the document and the code disagree. All keys are
derived from fixed labels so third-party SDK authors can reproduce every byte.
"""

from __future__ import annotations

import hashlib

import nacl.public

from crypto.channel import Channel, EphemeralKey
from crypto.identity import GatewayIdentity
from gateway.protocol import (
    Ack,
    CustomerMsg,
    Hello,
    Key,
    Msg,
    Notice,
    Open,
    Profile,
    Welcome,
    encode,
)

BEGIN = "<!-- example:begin -->"
END = "<!-- example:end -->"


def seed(label: str) -> bytes:
    return hashlib.sha256(f"cipherdesk protocol example: {label}".encode()).digest()


def example_lines() -> list[str]:
    identity = GatewayIdentity.from_seed(seed("gateway identity"))
    server = EphemeralKey(nacl.public.PrivateKey(seed("server ephemeral")))
    client = EphemeralKey(nacl.public.PrivateKey(seed("client ephemeral")))
    sid = "c2lkLWV4YW1wbGUx"
    server_channel = Channel.server(server.shared_key(client.public_b64))
    client_channel = Channel.client(client.shared_key(server.public_b64))

    lines = [
        f"gateway verify key (/.well-known/cipherdesk.json): {identity.verify_key_b64}",
        f"server ephemeral secret key (hex): {seed('server ephemeral').hex()}",
        f"client ephemeral secret key (hex): {seed('client ephemeral').hex()}",
        f"shared key (hex):                  {server.shared_key(client.public_b64).hex()}",
        "",
    ]

    def plain(direction: str, frame: object) -> None:
        lines.append(f"{direction} {encode(frame).decode()}")  # type: ignore[arg-type]

    def sealed(direction: str, channel: Channel, frame: object) -> None:
        inner = encode(frame).decode()  # type: ignore[arg-type]
        counter, c = channel.seal_b64(inner.encode())
        lines.append(f'{direction} {{"t":"sealed","n":{counter},"c":"{c}"}}')
        lines.append(f"     inner: {inner}")

    plain(
        "S→C",
        Hello(
            v=1,
            sid=sid,
            server_pk=server.public_b64,
            sig=identity.sign_hello(sid, server.public_b64),
            mode="inspect",
            limits={"max_frame_bytes": 65536, "max_text_chars": 4000},
        ),
    )
    plain("C→S", Key(client_pk=client.public_b64))
    sealed("C→S", client_channel, Open(profile=Profile(name="Ada", topic="billing")))
    sealed(
        "S→C",
        server_channel,
        Welcome(
            chat="5f1c2a9e0b7d4c3e8a6f1d2b3c4e5f60",
            token="r3sUm3-t0k3n-3xampl3-Vq8wJx2LmN0pQ7sT",
            state="queued",
            last_seq=0,
        ),
    )
    sealed(
        "C→S",
        client_channel,
        CustomerMsg(
            id="6a1e0c9b-0d2c-4f1e-9a3b-2c4d5e6f7a8b", text="Hi, my card is 4111 1111 1111 1111"
        ),
    )
    sealed(
        "S→C",
        server_channel,
        Ack(
            id="6a1e0c9b-0d2c-4f1e-9a3b-2c4d5e6f7a8b",
            seq=1,
            chat="5f1c2a9e0b7d4c3e8a6f1d2b3c4e5f60",
            ts=1795420800.0,
        ),
    )
    sealed(
        "S→C",
        server_channel,
        Notice(
            id="6a1e0c9b-0d2c-4f1e-9a3b-2c4d5e6f7a8b",
            action="masked",
            kinds=["card"],
            message="Please don't share card numbers in chat; use the secure payment page.",
            chat="5f1c2a9e0b7d4c3e8a6f1d2b3c4e5f60",
        ),
    )
    sealed(
        "S→C",
        server_channel,
        Msg(
            seq=1,
            sender="customer",
            text="Hi, my card is **** **** **** 1111",
            ts=1795420800.0,
            id="6a1e0c9b-0d2c-4f1e-9a3b-2c4d5e6f7a8b",
            chat="5f1c2a9e0b7d4c3e8a6f1d2b3c4e5f60",
        ),
    )
    return lines


def example_block() -> str:
    return "\n".join([BEGIN, "```text", *example_lines(), "```", END])


if __name__ == "__main__":
    print(example_block())
