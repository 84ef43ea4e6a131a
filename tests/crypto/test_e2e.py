"""End-to-end mode constructions (crypto/e2e.py): certificates, wrapped chat keys, sealed
messages and franking -- known answers (``e2e_vectors.json``, which the browser side must
also pass) and every refusal an end relies on."""

from __future__ import annotations

import json
from pathlib import Path

import nacl.public
import pytest

from crypto.e2e import (
    MAX_POLICY_CHARS,
    CertificateError,
    DeviceCertificate,
    E2EError,
    SignedCertificate,
    TenantSigningKey,
    commitment,
    fingerprint,
    gateway_tag,
    new_chat_key,
    open_message,
    seal_message,
    unwrap_chat_key,
    verify_certificate,
    verify_franking,
    verify_policy,
    wrap_chat_key,
)
from crypto.encoding import b64decode, b64encode

VECTORS = json.loads((Path(__file__).parent / "e2e_vectors.json").read_text("utf-8"))
NOW = 1_800_000_000


def _cert(pk: str, **changes: object) -> DeviceCertificate:
    fields: dict[str, object] = {
        "tenant": "demo",
        "agent": "agt_1",
        "name": "Ana",
        "role": "agent",
        "device": "dev_1",
        "public_key": pk,
        "issued_at": NOW - 60,
        "expires_at": NOW + 86_400,
    }
    fields.update(changes)
    return DeviceCertificate(**fields)  # type: ignore[arg-type]


# ------------------------------------------------------------------ known answers


def test_the_vector_certificate_verifies_and_says_what_it_should() -> None:
    v = VECTORS["certificate"]
    cert = verify_certificate(
        VECTORS["tenant_verify_key"], SignedCertificate(v["body"], v["sig"]), now=v["now"]
    )
    assert (cert.agent, cert.device, cert.public_key, cert.name) == (
        v["expect"]["agent"],
        v["expect"]["device"],
        v["expect"]["pk"],
        v["expect"]["name"],
    )


def test_the_vector_wrap_and_message_open() -> None:
    device = nacl.public.PrivateKey(b64decode(VECTORS["device_private_key"]))
    w = VECTORS["wrap"]
    key = unwrap_chat_key(w["wrapped"], device, chat=w["chat"], epoch=w["epoch"])
    assert b64encode(key) == w["chat_key"]
    m = VECTORS["message"]
    opened = open_message(
        key, c=m["c"], fc=m["fc"], chat=m["chat"], sender=m["sender"], msg_id=m["id"], epoch=1
    )
    assert opened.text == m["text"]


def test_the_vector_commitment_and_gateway_tag_recompute() -> None:
    c, g = VECTORS["commitment"], VECTORS["gateway_tag"]
    fc = commitment(
        b64decode(c["franking_key"]),
        chat=c["chat"],
        sender=c["sender"],
        msg_id=c["id"],
        text=c["text"],
    )
    assert fc == c["fc"]
    gt = gateway_tag(
        b64decode(g["secret"]),
        chat=g["chat"],
        sender=g["sender"],
        msg_id=g["id"],
        seq=g["seq"],
        ts=g["ts"],
        fc=g["fc"],
    )
    assert gt == g["gt"]


# ------------------------------------------------------------------ certificates


def test_certificates_refuse_another_key_a_changed_body_expiry_and_another_tenant() -> None:
    tenant = TenantSigningKey.generate()
    device = nacl.public.PrivateKey.generate()
    pk = b64encode(bytes(device.public_key))
    signed = tenant.certify(_cert(pk))
    assert verify_certificate(tenant.verify_key, signed, now=NOW, tenant="demo").device == "dev_1"

    def code(**kw: object) -> str:
        with pytest.raises(CertificateError) as refused:
            verify_certificate(**kw)  # type: ignore[arg-type]
        return refused.value.code

    other = TenantSigningKey.generate()
    assert code(verify_key=other.verify_key, signed=signed, now=NOW) == "bad_signature"
    swapped = SignedCertificate(signed.body.replace(pk, b64encode(bytes(32))), signed.sig)
    assert code(verify_key=tenant.verify_key, signed=swapped, now=NOW) == "bad_signature"
    assert code(verify_key=tenant.verify_key, signed=signed, now=NOW + 86_400) == "expired"
    assert code(verify_key=tenant.verify_key, signed=signed, now=NOW - 3600) == "expired"
    assert (
        code(verify_key=tenant.verify_key, signed=signed, now=NOW, tenant="other") == "wrong_tenant"
    )
    junk = SignedCertificate(signed.body, "!" * 88)
    assert code(verify_key=tenant.verify_key, signed=junk, now=NOW) == "malformed"
    not_a_cert = tenant.certify(_cert(pk))  # re-signed body that is not a v1 certificate
    body = not_a_cert.body.replace('"v":1', '"v":2')
    resigned = SignedCertificate(body, tenant.sign_body(body))
    assert code(verify_key=tenant.verify_key, signed=resigned, now=NOW) == "malformed"


def test_signed_documents_nested_past_the_parser_are_malformed_not_a_traceback() -> None:
    """A body signed by the tenant key but nested deeper than json recurses ("[[[…") is
    refused as ``malformed``, not raised as RecursionError (a 500 and a traceback)."""
    tenant = TenantSigningKey.generate()
    deep = '{"v":1,"tenant":"demo","rules":' + "[" * 100_000 + "]" * 100_000 + "}"
    with pytest.raises(CertificateError) as refused:
        verify_policy(tenant.verify_key, deep, tenant.sign_policy(deep), tenant="demo")
    assert refused.value.code == "malformed"
    deep_cert = '{"v":1,"pk":' + "[" * 100_000 + "]" * 100_000 + "}"
    signed = SignedCertificate(deep_cert, tenant.sign_body(deep_cert))
    with pytest.raises(CertificateError) as refused:
        verify_certificate(tenant.verify_key, signed, now=NOW, tenant="demo")
    assert refused.value.code == "malformed"


def test_a_policy_over_the_length_bound_is_refused_before_its_signature() -> None:
    tenant = TenantSigningKey.generate()
    body = '{"v":1,"tenant":"demo","pad":"' + "x" * MAX_POLICY_CHARS + '"}'
    with pytest.raises(CertificateError) as refused:
        verify_policy(tenant.verify_key, body, tenant.sign_policy(body), tenant="demo")
    assert refused.value.code == "malformed" and "too long" in str(refused.value)


def test_fingerprints_are_short_and_stable() -> None:
    pk = b64encode(bytes(range(32)))
    assert fingerprint(pk) == fingerprint(pk)
    assert len(fingerprint(pk).split(" ")) == 8


# ------------------------------------------------------------------ keys and messages


def test_a_wrapped_key_opens_only_for_its_device_chat_and_epoch() -> None:
    device = nacl.public.PrivateKey.generate()
    pk = b64encode(bytes(device.public_key))
    key = new_chat_key()
    wrapped = wrap_chat_key(key, pk, chat="c1", epoch=2)
    assert unwrap_chat_key(wrapped, device, chat="c1", epoch=2) == key
    with pytest.raises(E2EError, match="another chat or epoch"):
        unwrap_chat_key(wrapped, device, chat="c2", epoch=2)
    with pytest.raises(E2EError, match="another chat or epoch"):
        unwrap_chat_key(wrapped, device, chat="c1", epoch=1)
    with pytest.raises(E2EError, match="does not open"):
        unwrap_chat_key(wrapped, nacl.public.PrivateKey.generate(), chat="c1", epoch=2)
    with pytest.raises(E2EError):
        unwrap_chat_key("AAAA", device, chat="c1", epoch=2)


def test_a_message_opens_only_in_its_own_frame_and_with_its_commitment() -> None:
    key = new_chat_key()
    sealed = seal_message(key, chat="c1", sender="customer", msg_id="m1", epoch=1, text="你好")
    frame = {"c": sealed.c, "fc": sealed.fc, "chat": "c1", "sender": "customer", "msg_id": "m1"}
    opened = open_message(key, epoch=1, **frame)  # type: ignore[arg-type]
    assert opened.text == "你好" and len(b64decode(opened.franking_key)) == 32
    for field, value in (("chat", "c2"), ("sender", "agent:dev_1"), ("msg_id", "m2")):
        with pytest.raises(E2EError, match="another"):
            open_message(key, epoch=1, **{**frame, field: value})  # type: ignore[arg-type]
    with pytest.raises(E2EError, match="another e"):
        open_message(key, epoch=2, **frame)  # type: ignore[arg-type]
    other = seal_message(key, chat="c1", sender="customer", msg_id="m1", epoch=1, text="x")
    with pytest.raises(E2EError, match="commitment"):
        open_message(key, epoch=1, **{**frame, "fc": other.fc})  # type: ignore[arg-type]
    with pytest.raises(E2EError, match="does not open"):
        open_message(new_chat_key(), epoch=1, **frame)  # type: ignore[arg-type]
    # Two seals of the same text differ (fresh nonce and franking key).
    again = seal_message(key, chat="c1", sender="customer", msg_id="m1", epoch=1, text="你好")
    assert (again.c, again.fc) != (sealed.c, sealed.fc)


def test_franking_verifies_the_real_report_and_refuses_forgeries() -> None:
    key = new_chat_key()
    sealed = seal_message(key, chat="c1", sender="agent:dev_1", msg_id="m1", epoch=1, text="rude")
    fk = open_message(
        key, c=sealed.c, fc=sealed.fc, chat="c1", sender="agent:dev_1", msg_id="m1", epoch=1
    ).franking_key
    old, current = b"o" * 32, b"n" * 32
    where = {"chat": "c1", "sender": "agent:dev_1", "msg_id": "m1", "seq": 4, "ts": 1.5}
    gt = gateway_tag(old, fc=sealed.fc, **where)  # type: ignore[arg-type]

    def check(text: str = "rude", franking_key: str = fk, **changes: object) -> bool:
        fields = {**where, **changes}
        return verify_franking(
            [current, old], fc=sealed.fc, gt=gt, text=text, franking_key=franking_key, **fields
        )  # type: ignore[arg-type]

    assert check()  # under a retired gateway key still in the ring
    assert not check(text="polite")
    assert not check(franking_key=b64encode(bytes(32)))
    assert not check(seq=5)
    assert not check(sender="customer")
    assert not check(ts=2.5)
    assert not verify_franking(
        [current], fc=sealed.fc, gt=gt, text="rude", franking_key=fk, **where
    )  # type: ignore[arg-type]
