"""Fuzz target: what an end-to-end end parses from the gateway (``crypto/e2e.py``): device
certificates, wrapped chat keys and relayed message records -- all chosen by a gateway the
ends do not trust.

The first byte picks the shape:

* a certificate body (``verify_certificate``), half of them *validly signed* by the tenant
  key so the fuzzer reaches the body parser behind the signature;
* a wrapped key (``unwrap_chat_key``), half of them genuinely wrapped (with the fuzzer's
  bytes as the key, or a wrong chat/epoch) for the device;
* a message (``open_message``), half of them genuinely sealed under the chat key with the
  fuzzer's bytes as text, the frame then changed in one field.

Contract: a value or :class:`E2EError` (``CertificateError`` with a documented code); a
genuinely sealed message opens to exactly its text, and only in its own frame.
"""

from __future__ import annotations

import hashlib

import nacl.public

from crypto.e2e import (
    CertificateError,
    E2EError,
    SignedCertificate,
    TenantSigningKey,
    open_message,
    seal_message,
    unwrap_chat_key,
    verify_certificate,
    wrap_chat_key,
)
from crypto.encoding import b64encode

_TENANT = TenantSigningKey(hashlib.sha256(b"fuzz tenant").digest())
_DEVICE = nacl.public.PrivateKey(hashlib.sha256(b"fuzz device").digest())
_DEVICE_PK = b64encode(bytes(_DEVICE.public_key))
_CHAT_KEY = hashlib.sha256(b"fuzz chat key").digest()
_CODES = {"malformed", "bad_signature", "expired", "wrong_tenant"}
NOW = 1_800_000_000


def _certificate(rest: bytes, signed: bool) -> None:
    body = rest.decode("utf-8", "replace")
    sig = _TENANT.sign_body(body) if signed else b64encode(hashlib.sha512(rest).digest())
    try:
        cert = verify_certificate(
            _TENANT.verify_key, SignedCertificate(body, sig), now=NOW, tenant="t1"
        )
    except CertificateError as exc:
        assert exc.code in _CODES, exc.code
        return
    assert signed and cert.tenant == "t1" and cert.issued_at - 300 <= NOW < cert.expires_at


def _wrap(rest: bytes, genuine: bool) -> None:
    if genuine:
        key = hashlib.sha256(rest).digest()
        wrapped = wrap_chat_key(key, _DEVICE_PK, chat="c1", epoch=1)
        chat = "c1" if len(rest) % 3 else "c2"
        try:
            assert unwrap_chat_key(wrapped, _DEVICE, chat=chat, epoch=1) == key
        except E2EError:
            assert chat == "c2"
            return
        assert chat == "c1"
        return
    try:
        unwrap_chat_key(rest.decode("utf-8", "replace"), _DEVICE, chat="c1", epoch=1)
    except E2EError:
        return


def _message(rest: bytes, genuine: bool) -> None:
    frame = {"chat": "c1", "sender": "customer", "msg_id": "m1", "epoch": 1}
    if genuine:
        text = rest.decode("utf-8", "replace")
        sealed = seal_message(_CHAT_KEY, text=text, **frame)  # type: ignore[arg-type]
        field = ("chat", "sender", "msg_id", "epoch", None)[len(rest) % 5]
        changed = dict(frame)
        if field is not None:
            changed[field] = 2 if field == "epoch" else "other"
        try:
            opened = open_message(_CHAT_KEY, c=sealed.c, fc=sealed.fc, **changed)  # type: ignore[arg-type]
        except E2EError:
            assert field is not None
            return
        assert field is None and opened.text == text
        return
    half = len(rest) // 2
    try:
        open_message(
            _CHAT_KEY,
            c=rest[:half].decode("utf-8", "replace"),
            fc=rest[half:].decode("utf-8", "replace"),
            **frame,  # type: ignore[arg-type]
        )
    except E2EError:
        return
    raise AssertionError("random bytes opened as a message")


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode, rest = data[0] % 6, data[1:]
    if mode < 2:
        _certificate(rest, signed=mode == 1)
    elif mode < 4:
        _wrap(rest, genuine=mode == 3)
    else:
        _message(rest, genuine=mode == 5)
