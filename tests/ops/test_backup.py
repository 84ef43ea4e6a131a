"""Backup, verification and restore of the store (gateway/backup.py, cli_backup.py).

The data is the first release's fixture database upgraded by this code: real sealed
chats, an erased chat, agents with sealed TOTP secrets, a tenant with a sealed identity
secret — all under the fixture's master key.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from crypto.envelope import Keyring
from gateway import backup
from gateway.app import build_services, close_services
from gateway.config import load_config
from gateway.store import open_store
from tests.ops.release_fixture import build_release1, release1

ROOT = Path(__file__).resolve().parents[2]


def _keyring() -> Keyring:
    return Keyring.from_env_value(release1()["master_key"])


async def _upgraded_release1(store_url: str, data_dir: Path) -> None:
    await build_release1(store_url, data_dir)
    store = open_store(store_url, data_dir)
    await store.open()
    await store.close()


@pytest.fixture
async def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    await _upgraded_release1(f"sqlite:///{data}/cipherdesk.db", data)
    return data


async def _kept_messages(data: Path) -> list[str]:
    config = load_config(
        None,
        environ={"CIPHERDESK_MASTER_KEY": release1()["master_key"]},
        overrides={"server": {"data_dir": str(data)}},
    )
    svc = await build_services(config)
    try:
        kept = release1()["expected"]["chats"]["kept"]["id"]
        return [m.text for m in await svc.chats.messages(kept, 0)]
    finally:
        await close_services(svc)


async def test_backup_manifest_checksums_and_no_master_key(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "bk"
    manifest = await backup.create_backup(
        data_dir / "cipherdesk.db", out, gateway_version="9.9.9", identity_key_id="abcd"
    )
    assert sorted(p.name for p in out.iterdir()) == ["cipherdesk.db", "manifest.json"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in out.iterdir())
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["key_ids"] == list(_keyring().key_ids) == manifest.key_ids
    assert on_disk["gateway_version"] == "9.9.9" and on_disk["identity_key_id"] == "abcd"
    assert on_disk["schema_version"] == manifest.schema_version >= 1
    assert on_disk["counts"]["chats"] == 2 and on_disk["counts"]["chat_keys"] == 1
    assert on_disk["created_at_utc"].endswith("Z")
    (entry,) = on_disk["files"]
    assert entry["sha256"] == backup.sha256_file(out / "cipherdesk.db")
    # the master key appears nowhere in the backup, raw or encoded
    raw_key = base64.b64decode(release1()["master_key"])
    for path in out.iterdir():
        content = path.read_bytes()
        assert raw_key not in content and release1()["master_key"].encode() not in content
    assert (await backup.verify_backup(out, _keyring())).key_ids == manifest.key_ids


async def test_verify_refuses_foreign_keyring_and_tampering(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "bk"
    await backup.create_backup(
        data_dir / "cipherdesk.db", out, gateway_version="1", identity_key_id=None
    )
    stranger = Keyring.generate()
    with pytest.raises(backup.BackupError, match="cannot open this data") as refused:
        await backup.verify_backup(out, stranger)
    assert _keyring().key_ids[0] in str(refused.value)
    # a keyring holding the old key among others opens it (after a rotation)
    rotated = Keyring.from_env_value(
        f"{Keyring.generate().current.to_b64()},{release1()['master_key']}"
    )
    await backup.verify_backup(out, rotated)

    manifest = json.loads((out / "manifest.json").read_text())
    manifest["key_ids"] = []
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(backup.BackupError, match="altered"):
        await backup.verify_backup(out, _keyring())

    db = out / "cipherdesk.db"
    content = bytearray(db.read_bytes())
    content[len(content) // 2] ^= 0x01
    db.write_bytes(bytes(content))
    with pytest.raises(backup.BackupError, match="does not match its checksum"):
        await backup.verify_backup(out, _keyring())


async def test_backup_refuses_a_non_empty_target(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "bk"
    out.mkdir()
    (out / "something").write_text("x")
    with pytest.raises(backup.BackupError, match="not empty"):
        await backup.create_backup(
            data_dir / "cipherdesk.db", out, gateway_version="1", identity_key_id=None
        )
    assert sorted(p.name for p in out.iterdir()) == ["something"]


async def test_restore_replaces_only_with_force_and_keeps_the_old_files(
    data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bk"
    await backup.create_backup(
        data_dir / "cipherdesk.db", out, gateway_version="1", identity_key_id=None
    )
    target = tmp_path / "other"
    await _upgraded_release1(f"sqlite:///{target}/cipherdesk.db", target)
    before = (target / "cipherdesk.db").read_bytes()
    with pytest.raises(backup.BackupError, match="already holds a database"):
        await backup.restore_backup(out, target / "cipherdesk.db", _keyring())
    assert (target / "cipherdesk.db").read_bytes() == before
    report = await backup.restore_backup(out, target / "cipherdesk.db", _keyring(), force=True)
    assert [p.name.split(".replaced-")[0] for p in report.replaced][:1] == ["cipherdesk.db"]
    assert report.replaced[0].read_bytes() == before
    assert stat.S_IMODE((target / "cipherdesk.db").stat().st_mode) == 0o600
    texts = await _kept_messages(target)
    assert texts == [m["text"] for m in release1()["expected"]["chats"]["kept"]["messages"]]


async def _cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("CIPHERDESK_")}
    full.update(env)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        *args,
        cwd=ROOT,
        env=full,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_cli_backup_restore_round_trip(data_dir: Path, tmp_path: Path) -> None:
    key = {"CIPHERDESK_MASTER_KEY": release1()["master_key"]}
    out = tmp_path / "bk"
    code, stdout, err = await _cli("backup", "--data-dir", str(data_dir), str(out), env={})
    assert code == 0, err
    assert "holds no master key" in stdout
    code, stdout, err = await _cli(
        "backup", "verify", str(out), "--data-dir", str(data_dir), env=key
    )
    assert code == 0, err
    assert "intact" in stdout

    fresh = tmp_path / "fresh"
    code, _, err = await _cli(
        "restore",
        str(out),
        "--data-dir",
        str(fresh),
        env={"CIPHERDESK_MASTER_KEY": Keyring.generate().current.to_b64()},
    )
    assert code == 2 and err.count("\n") == 1 and "cannot open this data" in err
    assert not (fresh / "cipherdesk.db").exists()
    code, _, err = await _cli("restore", str(out), "--data-dir", str(fresh), env={})
    assert code == 2 and "no master key configured" in err
    assert not (fresh / "master.key").exists()  # restore never mints a key
    code, stdout, err = await _cli("restore", str(out), "--data-dir", str(fresh), env=key)
    assert code == 0, err
    assert "restored" in stdout
    code, _, err = await _cli("restore", str(out), "--data-dir", str(fresh), env=key)
    assert code == 2 and "--force" in err
    texts = await _kept_messages(fresh)
    assert len(texts) == 3


@pytest.mark.services
async def test_backup_verify_checks_a_postgres_store(postgres_dsn: str, tmp_path: Path) -> None:
    await _upgraded_release1(postgres_dsn, tmp_path)
    env = {"CIPHERDESK_STORE_URL": postgres_dsn, "CIPHERDESK_MASTER_KEY": release1()["master_key"]}
    code, stdout, err = await _cli("backup", "verify", "--data-dir", str(tmp_path), env=env)
    assert code == 0, err
    assert _keyring().key_ids[0] in stdout and "schema" in stdout
    env["CIPHERDESK_MASTER_KEY"] = Keyring.generate().current.to_b64()
    code, _, err = await _cli("backup", "verify", "--data-dir", str(tmp_path), env=env)
    assert code == 2 and "cannot open this data" in err
    code, _, err = await _cli("backup", "--data-dir", str(tmp_path), str(tmp_path / "x"), env=env)
    assert code == 2 and "pg_dump" in err
