"""Gateway identity: hello signatures and the owner-only seed file."""

from __future__ import annotations

import hashlib

import pytest

from crypto.channel import EphemeralKey
from crypto.encoding import EncodingError, b64decode, b64encode
from crypto.identity import (
    GatewayIdentity,
    hello_transcript,
    verify_hello,
)


@pytest.fixture
def identity() -> GatewayIdentity:
    return GatewayIdentity.generate()


@pytest.fixture
def server_pk() -> str:
    return EphemeralKey.generate().public_b64


# --- transcript and signatures -----------------------------------------------------


def test_transcript_bytes_are_exact() -> None:
    assert hello_transcript("s-1", "PK==") == b"cipherdesk/v1/hello|s-1|PK=="
    assert hello_transcript("\u00e9", "K") == "cipherdesk/v1/hello|\u00e9|K".encode()


def test_sign_then_verify(identity: GatewayIdentity, server_pk: str) -> None:
    sig = identity.sign_hello("sid-42", server_pk)
    assert len(sig) == 88  # base64 of 64 bytes
    assert verify_hello(identity.verify_key_b64, "sid-42", server_pk, sig) is True


def test_verify_rejects_changed_sid_key_or_signer(
    identity: GatewayIdentity, server_pk: str
) -> None:
    sig = identity.sign_hello("sid-42", server_pk)
    other_pk = EphemeralKey.generate().public_b64
    assert verify_hello(identity.verify_key_b64, "sid-43", server_pk, sig) is False
    assert verify_hello(identity.verify_key_b64, "sid-42", other_pk, sig) is False
    impostor = GatewayIdentity.generate().verify_key_b64
    assert verify_hello(impostor, "sid-42", server_pk, sig) is False


def test_verify_rejects_any_flipped_signature_byte(
    identity: GatewayIdentity, server_pk: str
) -> None:
    raw = bytearray(b64decode(identity.sign_hello("s", server_pk)))
    for index in range(len(raw)):
        tampered = bytearray(raw)
        tampered[index] ^= 0x01
        assert verify_hello(identity.verify_key_b64, "s", server_pk, b64encode(tampered)) is False


@pytest.mark.parametrize(
    ("key", "sig"),
    [
        ("", "VALID"),
        ("not base64", "VALID"),
        (b64encode(bytes(31)), "VALID"),
        ("KEY", ""),
        ("KEY", "%%%"),
        ("KEY", b64encode(bytes(63))),
        ("KEY", b64encode(bytes(64))),
        (None, "VALID"),
        ("KEY", None),
        (b"bytes", "VALID"),
    ],
)
def test_verify_returns_false_on_garbage(
    identity: GatewayIdentity, server_pk: str, key: object, sig: object
) -> None:
    valid = identity.sign_hello("s", server_pk)
    key = identity.verify_key_b64 if key == "KEY" else key
    sig = valid if sig == "VALID" else sig
    assert verify_hello(key, "s", server_pk, sig) is False  # type: ignore[arg-type]


def test_verify_returns_false_on_unencodable_sid(identity: GatewayIdentity, server_pk: str) -> None:
    sig = identity.sign_hello("s", server_pk)
    assert verify_hello(identity.verify_key_b64, "\ud800", server_pk, sig) is False


def test_sign_refuses_a_server_pk_that_is_not_a_key(identity: GatewayIdentity) -> None:
    with pytest.raises(EncodingError):
        identity.sign_hello("s", "x|y")


def test_key_id_is_a_short_blake2b_fingerprint(identity: GatewayIdentity) -> None:
    expected = hashlib.blake2b(identity.verify_key_bytes, digest_size=8).hexdigest()
    assert identity.key_id == expected
    assert len(identity.key_id) == 16
    assert GatewayIdentity.generate().key_id != identity.key_id


def test_repr_shows_key_id_not_seed(identity: GatewayIdentity) -> None:
    seed = bytes(identity._signing_key)
    text = repr(identity)
    assert identity.key_id in text
    assert seed.hex() not in text and b64encode(seed) not in text


def test_from_seed_requires_32_bytes() -> None:
    with pytest.raises(ValueError):
        GatewayIdentity.from_seed(bytes(31))


# --- the seed file -----------------------------------------------------------------


def test_report_signatures_are_domain_separated(identity: GatewayIdentity) -> None:
    from crypto.identity import report_transcript, verify_report

    body = b'{"counts":{"chats":1}}'
    sig = identity.sign_report(body)
    assert report_transcript(body) == b"cipherdesk/v1/report|" + body
    assert verify_report(identity.verify_key_b64, body, sig)
    assert not verify_report(identity.verify_key_b64, body.replace(b"1", b"2"), sig)
    assert not verify_report(GatewayIdentity.generate().verify_key_b64, body, sig)
    assert not verify_report(identity.verify_key_b64, body, "not base64!")
    # The same bytes signed as a hello never pass as a report, nor the reverse.
    hello_sig = identity.sign_hello("|" + body.decode(), identity.verify_key_b64)
    assert not verify_report(identity.verify_key_b64, body, hello_sig)
    assert not verify_hello(identity.verify_key_b64, "s", identity.verify_key_b64, sig)
