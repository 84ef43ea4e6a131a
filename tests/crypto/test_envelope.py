"""At-rest envelopes: records, master-key wrapping, rotation and key sources."""

from __future__ import annotations

import hashlib
import os
import stat
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


def test_rotation_keeps_old_blobs_and_rewrap_moves_them(tmp_path: Path) -> None:
    path = tmp_path / "master.keys"
    ring = Keyring.load_or_create(path)
    data_key = new_data_key()
    old_wrapped = ring.wrap(data_key)
    old_sealed = ring.seal(b"api-token", b"plugin|zendesk")
    assert ring.needs_rewrap(old_wrapped) is False

    rotated = ring.rotate(path)
    assert rotated.current.key_id != ring.current.key_id
    assert rotated.key_ids == (rotated.current.key_id, ring.current.key_id)
    assert ring.key_ids == (ring.current.key_id,)  # the old object is unchanged
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["master.keys"]

    assert rotated.unwrap(old_wrapped) == data_key
    assert rotated.open(old_sealed, b"plugin|zendesk") == b"api-token"
    assert rotated.needs_rewrap(old_wrapped) is True
    assert rotated.needs_rewrap(old_sealed) is True

    new_wrapped = rotated.rewrap(old_wrapped)
    assert new_wrapped[1:5] == bytes.fromhex(rotated.current.key_id)
    assert rotated.needs_rewrap(new_wrapped) is False
    assert rotated.unwrap(new_wrapped) == data_key
    new_sealed = rotated.reseal(old_sealed, b"plugin|zendesk")
    assert rotated.needs_rewrap(new_sealed) is False
    assert rotated.open(new_sealed, b"plugin|zendesk") == b"api-token"

    # The old keyring (e.g. another node not yet restarted) cannot read new blobs.
    with pytest.raises(UnknownKeyError):
        ring.unwrap(new_wrapped)

    # A restart reads the rotated file: newest first, both keys present.
    reloaded = Keyring.load_or_create(path)
    assert reloaded.key_ids == rotated.key_ids
    assert reloaded.unwrap(old_wrapped) == data_key
    assert reloaded.unwrap(new_wrapped) == data_key


# --- key sources -------------------------------------------------------------------


def test_key_file_is_created_private_with_one_key(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "master.keys"
    previous = os.umask(0)
    try:
        ring = Keyring.load_or_create(path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == ring.current.to_b64() + "\n"
    assert Keyring.load_or_create(path).key_ids == ring.key_ids


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "master.keys"
    Keyring.load_or_create(path)
    path.chmod(0o644)
    with pytest.raises(KeyringError, match="chmod 600"):
        Keyring.load_or_create(path)


def test_key_file_ignores_blank_lines_and_comments(tmp_path: Path) -> None:
    new, old = MasterKey.generate(), MasterKey.generate()
    path = tmp_path / "master.keys"
    _write_private(path, f"# rotated today\n{new.to_b64()}\n\n  {old.to_b64()}  \n".encode())
    assert Keyring.load_or_create(path).key_ids == (new.key_id, old.key_id)


@pytest.mark.parametrize(
    "content", [b"", b"# only a comment\n", b"not-a-key\n", b"\xff\xfe\n", b"AAAA\n"]
)
def test_bad_key_files_are_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "master.keys"
    _write_private(path, content)
    with pytest.raises(KeyringError):
        Keyring.load_or_create(path)
    assert path.read_bytes() == content  # never "repaired" by overwriting


def test_env_value_takes_precedence_over_file(tmp_path: Path) -> None:
    path = tmp_path / "master.keys"
    file_ring = Keyring.load_or_create(path)
    env_new, env_old = MasterKey.generate(), MasterKey.generate()
    env_ring = Keyring.load_or_create(path, f"{env_new.to_b64()}, {env_old.to_b64()}")
    assert env_ring.key_ids == (env_new.key_id, env_old.key_id)
    with pytest.raises(UnknownKeyError):
        env_ring.unwrap(file_ring.wrap(new_data_key()))


def test_env_value_does_not_create_a_key_file(tmp_path: Path) -> None:
    path = tmp_path / "master.keys"
    ring = Keyring.load_or_create(path, MasterKey.generate().to_b64())
    assert len(ring.key_ids) == 1
    assert not path.exists()


@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_env_value_falls_back_to_file(tmp_path: Path, blank: str) -> None:
    path = tmp_path / "master.keys"
    file_ring = Keyring.load_or_create(path)
    assert Keyring.load_or_create(path, blank).key_ids == file_ring.key_ids


def test_invalid_env_value_is_refused_without_echoing_it(tmp_path: Path) -> None:
    almost_a_key = b64encode(b"\x42" * 31)
    good = MasterKey.generate().to_b64()
    with pytest.raises(KeyringError, match="key #2") as info:
        Keyring.load_or_create(tmp_path / "k", f"{good},{almost_a_key}")
    assert almost_a_key not in str(info.value)
    assert good not in str(info.value)
    with pytest.raises(KeyringError):
        Keyring.load_or_create(tmp_path / "k", f"{good},")


def test_reprs_leak_no_key_material() -> None:
    key = MasterKey.generate()
    ring = Keyring([key, MasterKey.generate()])
    raw = key._key
    for text in (repr(key), str(key), repr(ring), str(ring)):
        assert raw.hex() not in text
        assert b64encode(raw) not in text
        assert repr(raw)[2:-1] not in text
        assert key.key_id in text
