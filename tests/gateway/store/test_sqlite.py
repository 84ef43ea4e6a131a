"""SQLite-only behaviour: pragmas, what lands on disk, durability of acked writes."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import nacl.secret
import nacl.utils

from gateway.store import AuditEvent, OutboxEvent, PolicyFlag
from gateway.store.sqlite import SqliteStore
from tests.gateway.store.helpers import agent, chat, msg, tenant

PLAINTEXT = "My card is 4111 1111 1111 1111, please refund order #A-77"


def disk_bytes(path: Path) -> bytes:
    """The database file plus its WAL: everything SQLite keeps on disk."""
    out = b""
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(path) + suffix)
        if p.exists():
            out += p.read_bytes()
    return out


async def test_pragmas_and_file_mode(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "cd.db"
    store = SqliteStore(db)
    await store.open()
    try:
        writer = store._writer
        assert writer is not None

        async def pragma(name: str):
            return (await (await writer.execute(f"PRAGMA {name}")).fetchone())[0]

        assert await pragma("journal_mode") == "wal"
        assert await pragma("synchronous") == 2  # FULL
        assert await pragma("foreign_keys") == 1
        assert await pragma("busy_timeout") >= 1000
        assert await pragma("secure_delete") == 1
        assert stat.S_IMODE(db.stat().st_mode) == 0o600
        assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    finally:
        await store.close()


async def test_no_plaintext_on_disk(tmp_path: Path) -> None:
    db = tmp_path / "cd.db"
    key = nacl.utils.random(nacl.secret.SecretBox.KEY_SIZE)
    box = nacl.secret.SecretBox(key)
    sealed = bytes(box.encrypt(PLAINTEXT.encode()))
    store = SqliteStore(db)
    await store.open()
    try:
        await store.create_tenant(tenant())
        await store.create_agent(agent(email="ann@example.com"))
        await store.create_chat(
            chat(profile_sealed=bytes(box.encrypt(b"Ann, ann@shop"))), b"wrapped-by-master"
        )
        ev = OutboxEvent(
            "t1",
            "webhook",
            "message",
            "m1:webhook",
            bytes(box.encrypt(PLAINTEXT.encode())),
            "c1",
            1.0,
        )
        await store.append_message(msg("m1", body_sealed=sealed), [ev])
        await store.add_flag(
            PolicyFlag("c1", "t1", 1, ["card"], bytes(box.encrypt(PLAINTEXT.encode())), 1.0)
        )
        await store.append_audit(
            AuditEvent(ts=1.0, action="flag.open", actor="a1", details={"kinds": ["card"]})
        )
        assert (await store.messages_after("c1", 0))[0].body_sealed == sealed
    finally:
        await store.close()
    data = disk_bytes(db)
    assert sealed in data  # stored as given, byte for byte
    assert b"ann@example.com" in data  # metadata is not sealed, by design
    for needle in (PLAINTEXT, "4111 1111", "refund order", "ann@shop"):
        for encoded in (
            needle.encode(),
            needle.encode("utf-16-le"),
            base64.b64encode(needle.encode())[:16],
            needle.encode().hex().encode(),
        ):
            assert encoded not in data, needle


async def test_erase_leaves_no_key_bytes_on_disk(tmp_path: Path) -> None:
    db = tmp_path / "cd.db"
    wrapped = os.urandom(72)
    body = os.urandom(200)
    store = SqliteStore(db)
    await store.open()
    try:
        await store.create_tenant(tenant())
        await store.create_chat(chat(), wrapped)
        await store.append_message(msg("m1", body_sealed=body))
        assert wrapped in disk_bytes(db)
        assert await store.erase_chat("c1") is True
        data = disk_bytes(db)
        assert wrapped not in data  # secure_delete + WAL checkpoint/truncate
        assert body not in data
    finally:
        await store.close()


async def test_erasures_left_unshredded_are_shredded_together(tmp_path: Path) -> None:
    """``erase_chat(shred=False)`` leaves the old key in the WAL's old frames until
    ``shred_erased`` (a run of erasures checkpoints once); then no key byte is left."""
    db = tmp_path / "cd.db"
    keys = {cid: os.urandom(72) for cid in ("c1", "c2")}
    store = SqliteStore(db)
    await store.open()
    try:
        await store.create_tenant(tenant())
        for cid, wrapped in keys.items():
            await store.create_chat(chat(cid), wrapped)
        for cid in keys:
            assert await store.erase_chat(cid, shred=False) is True
        data = disk_bytes(db)
        assert all(wrapped in data for wrapped in keys.values())  # old WAL frames
        await store.shred_erased()
        data = disk_bytes(db)
        assert not [cid for cid, wrapped in keys.items() if wrapped in data]
    finally:
        await store.close()


async def test_queued_writes_commit_before_close(tmp_path: Path) -> None:
    db = tmp_path / "cd.db"
    store = SqliteStore(db)
    await store.open()
    await store.create_tenant(tenant())
    await store.create_chat(chat(), b"k")
    tasks = [asyncio.create_task(store.append_message(msg(f"m{i}"))) for i in range(50)]
    await asyncio.sleep(0)
    await store.close()
    results = await asyncio.gather(*tasks)
    assert sorted(r.message.seq for r in results) == list(range(1, 51))
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 50
    finally:
        conn.close()


_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from gateway.store.sqlite import SqliteStore
    from gateway.store import Chat, NewMessage, Tenant

    async def main(path):
        store = SqliteStore(path)
        await store.open()
        await store.create_tenant(Tenant(id="t1", name="T"))
        await store.create_chat(Chat(id="c1", tenant_id="t1", state="active", created_at=1.0),
                                b"k")
        print("ready", flush=True)
        i = 0
        while True:
            batch = [store.append_message(NewMessage("c1", f"m{i + k}", "customer", 1.0, b"x"))
                     for k in range(8)]
            for r in await asyncio.gather(*batch):
                print("ack", r.message.msg_id, r.message.seq, flush=True)  # the "ack"
            i += 8

    asyncio.run(main(sys.argv[1]))
    """
)


def test_acked_messages_survive_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "cd.db"
    root = Path(__file__).resolve().parents[3]
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(db)],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    acked: dict[str, int] = {}
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            parts = line.split()
            if parts and parts[0] == "ack":
                acked[parts[1]] = int(parts[2])
            if len(acked) >= 400:
                break
        proc.send_signal(signal.SIGKILL)  # mid-stream, writes in flight
    finally:
        proc.kill()
        proc.wait(10)
    assert len(acked) >= 400, proc.stderr.read() if proc.stderr else ""
    conn = sqlite3.connect(db)
    try:
        stored = dict(conn.execute("SELECT msg_id, seq FROM messages").fetchall())
        last_seq = conn.execute("SELECT last_seq FROM chats WHERE id = 'c1'").fetchone()[0]
    finally:
        conn.close()
    missing = {m for m in acked if stored.get(m) != acked[m]}
    assert not missing
    assert sorted(stored.values()) == list(range(1, len(stored) + 1))
    assert last_seq == len(stored)
