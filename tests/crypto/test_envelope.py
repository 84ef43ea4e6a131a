"""At-rest envelopes: records, master-key wrapping, rotation and key sources."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from crypto.encoding import b64encode
from crypto.envelope import (
    EnvelopeError,
    Keyring,
    KeyringError,
    MasterKey,
    UnknownKeyError,
    new_data_key,
    open_record,
    seal_record,
)

AAD = b"msg|chat-1|7"


def _write_private(path: Path, content: bytes, mode: int = 0o600) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    os.write(fd, content)
    os.close(fd)
    path.chmod(mode)


def _flips(blob: bytes) -> list[bytes]:
    out = []
    for index in range(len(blob)):
        tampered = bytearray(blob)
        tampered[index] ^= 0x01
        out.append(bytes(tampered))
    return out


# --- records -----------------------------------------------------------------------


def test_record_round_trip_and_format() -> None:
    key = new_data_key()
    blob = seal_record(key, b"card ends 4242", AAD)
    assert blob[0] == 0x01
    assert len(blob) == 1 + 24 + len(b"card ends 4242") + 16
    assert b"card ends" not in blob
    assert open_record(key, blob, AAD) == b"card ends 4242"


def test_records_use_fresh_nonces() -> None:
    key = new_data_key()
    first, second = seal_record(key, b"same", AAD), seal_record(key, b"same", AAD)
    assert first[1:25] != second[1:25]
    assert first != second


def test_new_data_keys_are_random_32_bytes() -> None:
    keys = {new_data_key() for _ in range(8)}
    assert len(keys) == 8
    assert all(len(key) == 32 for key in keys)


def test_record_wrong_aad_is_rejected() -> None:
    key = new_data_key()
    blob = seal_record(key, b"hello", b"msg|chat-1|7")
    for aad in (b"msg|chat-1|8", b"msg|chat-2|7", b""):
        with pytest.raises(EnvelopeError):
            open_record(key, blob, aad)


def test_record_wrong_key_is_rejected() -> None:
    blob = seal_record(new_data_key(), b"hello", AAD)
    with pytest.raises(EnvelopeError):
        open_record(new_data_key(), blob, AAD)


def test_shredded_key_leaves_records_unreadable() -> None:
    key = new_data_key()
    blobs = [seal_record(key, f"line {i}".encode(), f"msg|c|{i}".encode()) for i in range(3)]
    del key  # crypto-shredding: only the (deleted) data key could open them
    for i, blob in enumerate(blobs):
        with pytest.raises(EnvelopeError):
            open_record(new_data_key(), blob, f"msg|c|{i}".encode())


def test_record_every_tampered_byte_is_rejected() -> None:
    key = new_data_key()
    blob = seal_record(key, b"hi", AAD)
    for tampered in _flips(blob):
        with pytest.raises(EnvelopeError):
            open_record(key, tampered, AAD)


@pytest.mark.parametrize("blob", [b"", b"\x01", b"\x01" + bytes(39), b"\x02" + bytes(60)])
def test_record_malformed_blobs_are_rejected(blob: bytes) -> None:
    with pytest.raises(EnvelopeError):
        open_record(new_data_key(), blob, AAD)


def test_record_bad_key_size_is_an_envelope_error() -> None:
    with pytest.raises(EnvelopeError):
        seal_record(bytes(16), b"x", AAD)
    with pytest.raises(EnvelopeError):
        open_record(bytes(16), seal_record(new_data_key(), b"x", AAD), AAD)


# --- master keys and wrapping ------------------------------------------------------


def test_master_key_id_is_8_hex_derived_from_the_key() -> None:
    key = MasterKey(bytes(range(32)))
    expected = hashlib.blake2b(bytes(range(32)), digest_size=4, person=b"cipherdesk-mkid")
    assert key.key_id == expected.hexdigest()
    assert len(key.key_id) == 8
    assert MasterKey(bytes(range(32))).key_id == key.key_id
    assert MasterKey(bytes(32)).key_id != key.key_id


def test_wrap_unwrap_and_format() -> None:
    ring = Keyring.generate()
    data_key = new_data_key()
    blob = ring.wrap(data_key)
    assert blob[0] == 0x01
    assert blob[1:5] == bytes.fromhex(ring.current.key_id)
    assert len(blob) == 1 + 4 + 24 + 32 + 16
    assert data_key not in blob
    assert ring.unwrap(blob) == data_key


def test_wrap_every_tampered_byte_is_rejected() -> None:
    ring = Keyring.generate()
    blob = ring.wrap(new_data_key())
    for tampered in _flips(blob):
        with pytest.raises(EnvelopeError):
            ring.unwrap(tampered)


def test_unwrap_with_unknown_key_id() -> None:
    blob = Keyring.generate().wrap(new_data_key())
    with pytest.raises(UnknownKeyError, match=blob[1:5].hex()):
        Keyring.generate().unwrap(blob)
    assert issubclass(UnknownKeyError, EnvelopeError)


def test_wrap_requires_a_data_key() -> None:
    with pytest.raises(EnvelopeError):
        Keyring.generate().wrap(b"short")


def test_secret_seal_open_and_aad() -> None:
    ring = Keyring.generate()
    blob = ring.seal(b"JBSWY3DPEHPK3PXP", b"totp|agent-7")
    assert blob[1:5] == bytes.fromhex(ring.current.key_id)
    assert ring.open(blob, b"totp|agent-7") == b"JBSWY3DPEHPK3PXP"
    with pytest.raises(EnvelopeError):
        ring.open(blob, b"totp|agent-8")


def test_sealed_secrets_and_wrapped_keys_cannot_be_confused() -> None:
    ring = Keyring.generate()
    sealed = ring.seal(new_data_key(), b"")
    with pytest.raises(EnvelopeError):
        ring.unwrap(sealed)
    wrapped = ring.wrap(new_data_key())
    for aad in (b"", b"cipherdesk/v1/datakey"):
        with pytest.raises(EnvelopeError):
            ring.open(wrapped, aad)


def test_duplicate_and_empty_keyrings_are_refused() -> None:
    key = MasterKey.generate()
    with pytest.raises(KeyringError):
        Keyring([key, MasterKey(bytes(key._key))])
    with pytest.raises(KeyringError):
        Keyring([])


# --- rotation ----------------------------------------------------------------------


# --- key sources -------------------------------------------------------------------


def test_reprs_leak_no_key_material() -> None:
    key = MasterKey.generate()
    ring = Keyring([key, MasterKey.generate()])
    raw = key._key
    for text in (repr(key), str(key), repr(ring), str(ring)):
        assert raw.hex() not in text
        assert b64encode(raw) not in text
        assert repr(raw)[2:-1] not in text
        assert key.key_id in text
