"""The key files on disk (gateway/keyfiles.py): the master keyring and the identity seed are
created owner-only, reloaded, rotated atomically, and refused when unsafe or corrupt."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from crypto.channel import EphemeralKey
from crypto.encoding import b64encode
from crypto.envelope import KeyringError, MasterKey, UnknownKeyError, new_data_key
from crypto.identity import verify_hello
from gateway.keyfiles import (
    IdentityFileError,
    load_or_create_identity,
    load_or_create_keyring,
    rotate_keyring,
)


def _write_private(path: Path, content: bytes, mode: int = 0o600) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    os.write(fd, content)
    os.close(fd)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def server_pk() -> str:
    return EphemeralKey.generate().public_b64


@pytest.fixture
def open_umask() -> Iterator[None]:
    """Run with umask 0, so only the explicit creation mode can keep a file private."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_rotation_keeps_old_blobs_and_rewrap_moves_them(tmp_path: Path) -> None:
    path = tmp_path / "master.keys"
    ring = load_or_create_keyring(path)
    data_key = new_data_key()
    old_wrapped = ring.wrap(data_key)
    old_sealed = ring.seal(b"api-token", b"plugin|zendesk")
    assert ring.needs_rewrap(old_wrapped) is False

    rotated = rotate_keyring(ring, path)
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
    reloaded = load_or_create_keyring(path)
    assert reloaded.key_ids == rotated.key_ids
    assert reloaded.unwrap(old_wrapped) == data_key
    assert reloaded.unwrap(new_wrapped) == data_key


def test_key_file_is_created_private_with_one_key(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "master.keys"
    previous = os.umask(0)
    try:
        ring = load_or_create_keyring(path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == ring.current.to_b64() + "\n"
    assert load_or_create_keyring(path).key_ids == ring.key_ids


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "master.keys"
    load_or_create_keyring(path)
    path.chmod(0o644)
    with pytest.raises(KeyringError, match="chmod 600"):
        load_or_create_keyring(path)


def test_key_file_ignores_blank_lines_and_comments(tmp_path: Path) -> None:
    new, old = MasterKey.generate(), MasterKey.generate()
    path = tmp_path / "master.keys"
    _write_private(path, f"# rotated today\n{new.to_b64()}\n\n  {old.to_b64()}  \n".encode())
    assert load_or_create_keyring(path).key_ids == (new.key_id, old.key_id)


@pytest.mark.parametrize(
    "content", [b"", b"# only a comment\n", b"not-a-key\n", b"\xff\xfe\n", b"AAAA\n"]
)
def test_bad_key_files_are_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "master.keys"
    _write_private(path, content)
    with pytest.raises(KeyringError):
        load_or_create_keyring(path)
    assert path.read_bytes() == content  # never "repaired" by overwriting


def test_env_value_takes_precedence_over_file(tmp_path: Path) -> None:
    path = tmp_path / "master.keys"
    file_ring = load_or_create_keyring(path)
    env_new, env_old = MasterKey.generate(), MasterKey.generate()
    env_ring = load_or_create_keyring(path, f"{env_new.to_b64()}, {env_old.to_b64()}")
    assert env_ring.key_ids == (env_new.key_id, env_old.key_id)
    with pytest.raises(UnknownKeyError):
        env_ring.unwrap(file_ring.wrap(new_data_key()))


def test_env_value_does_not_create_a_key_file(tmp_path: Path) -> None:
    path = tmp_path / "master.keys"
    ring = load_or_create_keyring(path, MasterKey.generate().to_b64())
    assert len(ring.key_ids) == 1
    assert not path.exists()


@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_env_value_falls_back_to_file(tmp_path: Path, blank: str) -> None:
    path = tmp_path / "master.keys"
    file_ring = load_or_create_keyring(path)
    assert load_or_create_keyring(path, blank).key_ids == file_ring.key_ids


def test_invalid_env_value_is_refused_without_echoing_it(tmp_path: Path) -> None:
    almost_a_key = b64encode(b"\x42" * 31)
    good = MasterKey.generate().to_b64()
    with pytest.raises(KeyringError, match="key #2") as info:
        load_or_create_keyring(tmp_path / "k", f"{good},{almost_a_key}")
    assert almost_a_key not in str(info.value)
    assert good not in str(info.value)
    with pytest.raises(KeyringError):
        load_or_create_keyring(tmp_path / "k", f"{good},")


def test_load_or_create_writes_private_seed_and_reloads_it(
    tmp_path: Path, open_umask: None
) -> None:
    path = tmp_path / "keys" / "nested" / "identity.key"
    created = load_or_create_identity(path)
    assert _mode(path) == 0o600  # even with umask 0
    assert path.stat().st_size == 32
    assert _mode(path.parent) == 0o700
    reloaded = load_or_create_identity(path)
    assert reloaded.verify_key_b64 == created.verify_key_b64
    assert reloaded.key_id == created.key_id
    assert os.listdir(path.parent) == ["identity.key"]  # no temporary files left behind


def test_reloaded_identity_signs_verifiably(tmp_path: Path, server_pk: str) -> None:
    path = tmp_path / "identity.key"
    verify_key = load_or_create_identity(path).verify_key_b64
    sig = load_or_create_identity(path).sign_hello("s", server_pk)
    assert verify_hello(verify_key, "s", server_pk, sig)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_group_or_other_accessible_file_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "identity.key"
    load_or_create_identity(path)
    path.chmod(mode)
    with pytest.raises(IdentityFileError, match="chmod 600"):
        load_or_create_identity(path)


def test_wrong_size_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "identity.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"x" * 31)
    os.close(fd)
    with pytest.raises(IdentityFileError, match="31 bytes"):
        load_or_create_identity(path)
    assert path.read_bytes() == b"x" * 31  # never overwritten


def test_directory_in_place_of_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "identity.key"
    path.mkdir(mode=0o700)
    with pytest.raises(IdentityFileError):
        load_or_create_identity(path)
