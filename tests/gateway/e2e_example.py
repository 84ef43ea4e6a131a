"""Produce the end-to-end example embedded in docs/PROTOCOL.md from the real code.

Run ``python -m tests.gateway.e2e_example`` to print the Markdown block;
``test_protocol_doc.py`` fails when the document and the code disagree. Every key, nonce
and franking key is derived from a fixed label (``SHA-256("cipherdesk e2e example:
<label>")``) so an SDK author can reproduce each byte. Only the inner frames are shown:
each travels inside a ``sealed`` frame of its connection, as in the first example.
"""

from __future__ import annotations

import hashlib

import nacl.public

from crypto.e2e import (
    DeviceCertificate,
    TenantSigningKey,
    gateway_tag,
    seal_message,
    wrap_chat_key,
)
from crypto.encoding import b64encode
from gateway.protocol import (
    ChatKeys,
    CustomerSealedMsg,
    KeyForEpoch,
    MemberDevice,
    Members,
    Msg,
    Reported,
    ReportMsg,
    WrapKeys,
    WrappedKey,
    encode,
)

BEGIN = "<!-- e2e-example:begin -->"
END = "<!-- e2e-example:end -->"
CHAT = "5f1c2a9e0b7d4c3e8a6f1d2b3c4e5f60"
DEVICE = "dev_0f0e0d0c0b0a09080706050403020100"
AGENT = "agt_3c4e5f605f1c2a9e"
MSG_ID = "7b2f0c1d-4e5f-4a6b-8c9d-0e1f2a3b4c5d"
TS = 1795420800.0


def seed(label: str) -> bytes:
    return hashlib.sha256(f"cipherdesk e2e example: {label}".encode()).digest()


def example_lines() -> list[str]:
    tenant = TenantSigningKey(seed("tenant signing key"))
    device = nacl.public.PrivateKey(seed("device key"))
    device_pk = b64encode(bytes(device.public_key))
    signed = tenant.certify(
        DeviceCertificate(
            tenant="acme",
            agent=AGENT,
            name="王芳",
            role="agent",
            device=DEVICE,
            public_key=device_pk,
            issued_at=1795400000,
            expires_at=1803176000,
        )
    )
    chat_key = seed("chat key epoch 1")
    wrapped = wrap_chat_key(
        chat_key,
        device_pk,
        chat=CHAT,
        epoch=1,
        _fixed=(nacl.public.PrivateKey(seed("wrap ephemeral")), seed("wrap nonce")[:24]),
    )
    text = "你们就是骗子，退钱！"
    franking_key = seed("franking key")
    sealed = seal_message(
        chat_key,
        chat=CHAT,
        sender="customer",
        msg_id=MSG_ID,
        epoch=1,
        text=text,
        _fixed=(franking_key, seed("message nonce")[:24]),
    )
    gt = gateway_tag(
        seed("gateway franking secret"),
        chat=CHAT,
        sender="customer",
        msg_id=MSG_ID,
        seq=1,
        ts=TS,
        fc=sealed.fc,
    )
    frames = [
        (
            "S→C",
            Members(
                chat=CHAT,
                epoch=1,
                devices=[
                    MemberDevice(
                        device=DEVICE,
                        agent=AGENT,
                        reason="assigned",
                        cert=signed.body,
                        sig=signed.sig,
                    )
                ],
                holders=[],
            ),
        ),
        ("C→S", WrapKeys(epoch=1, keys=[WrappedKey(device=DEVICE, k=wrapped)])),
        ("S→A", ChatKeys(chat=CHAT, device=DEVICE, keys=[KeyForEpoch(e=1, k=wrapped)])),
        ("C→S", CustomerSealedMsg(id=MSG_ID, c=sealed.c, fc=sealed.fc, e=1)),
        (
            "S→A",
            Msg(
                seq=1,
                sender="customer",
                text="",
                ts=TS,
                id=MSG_ID,
                chat=CHAT,
                c=sealed.c,
                fc=sealed.fc,
                gt=gt,
                e=1,
            ),
        ),
        (
            "A→S",
            ReportMsg(
                seq=1,
                text=text,
                fk=b64encode(franking_key),
                gt=gt,
                reason="abuse",
                chat=CHAT,
            ),
        ),
        ("S→A", Reported(seq=1, verified=True, chat=CHAT)),
    ]
    lines = [
        f"tenant verify key (data-tenant-key): {tenant.verify_key}",
        f"device secret key (hex):             {bytes(device).hex()}",
        f"chat key, epoch 1 (hex):             {chat_key.hex()}",
        f"franking key (hex):                  {franking_key.hex()}",
        f"gateway franking secret (hex):       {seed('gateway franking secret').hex()}",
        "",
    ]
    lines += [f"{who} {encode(frame).decode()}" for who, frame in frames]
    return lines


def example_block() -> str:
    body = "\n".join(example_lines())
    return f"{BEGIN}\n```text\n{body}\n```\n{END}"


if __name__ == "__main__":
    print(example_block())
