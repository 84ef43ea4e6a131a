"""Restore drill: a real gateway process chats, is backed up under traffic, loses its data
dir, is restored from the backup, and the conversation resumes.

Checked: every message acked before the backup started is in the restored transcript
with its sequence number; the chat continues (resume + new acked messages); a chat
crypto-shredded before the backup stays unreadable after the restore (no data key, no
rows, resume refused). The master key lives in the environment and the signing key in a
"secrets backup" copy, as deploy/README.md prescribes; the database backup has neither.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
import sys
from pathlib import Path

import aiohttp
import pytest

from gateway.protocol import Ack, Msg
from gateway.sdk.client import AgentClient, ClosedError, CustomerClient, ProtocolError, ServerError
from tests.e2e.procs import IDENTITY_FILE, ROOT, Cluster, login

PASSWORD = "correct horse battery staple 42"


async def _run_cli(cluster: Cluster, *args: str) -> str:
    env = cluster.env()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_restore_drill_keeps_every_message_acked_before_the_backup(tmp_path: Path) -> None:
    node_dir = tmp_path / "node0"
    cluster = Cluster(
        tmp_path,
        store_url=f"sqlite:///{node_dir / 'cipherdesk.db'}",
        config_toml='[ratelimit]\nlimits = {messages_per_chat = "10000/s", '
        'messages_per_customer = "10000/s"}\n',
    )
    (node,) = await cluster.start(1)
    secrets_backup = tmp_path / "secrets"
    secrets_backup.mkdir()
    shutil.copy2(node_dir / IDENTITY_FILE, secrets_backup / IDENTITY_FILE)
    backup_dir = tmp_path / "backup-1"
    try:
        secret = cluster.add_agent("kim@example.com", PASSWORD, role="admin")
        token = await login(node.url, "kim@example.com", PASSWORD, secret)
        agent = AgentClient(node.url, token=token, gateway_key=cluster.verify_key)
        await agent.connect()

        # chat B: one exchange, then crypto-shredded through the admin API
        doomed = CustomerClient(
            node.url, "demo", origin=cluster.public_url, gateway_key=cluster.verify_key
        )
        await doomed.connect()
        doomed_chat = (await doomed.open()).chat
        await agent.accept(doomed_chat)
        assert isinstance(await doomed.send_text("my card is 4111 1111 1111 1111"), Ack)
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{node.url}/api/chats/{doomed_chat}/erase",
                headers={"Authorization": f"Bearer {token}"},
            ) as resp,
        ):
            assert resp.status == 200, await resp.text()
        with contextlib.suppress(Exception):
            await doomed.aclose()

        # chat A: the customer streams without pause while the backup is taken
        customer = CustomerClient(
            node.url, "demo", origin=cluster.public_url, gateway_key=cluster.verify_key
        )
        await customer.connect()
        chat = (await customer.open()).chat
        await agent.accept(chat)
        await agent.send_text(chat, "hello, how can I help?")
        acks: dict[str, int] = {}
        stop = asyncio.Event()
        enough = asyncio.Event()

        async def stream() -> None:
            i = 0
            while not stop.is_set():
                result = await customer.send_text(f"line {i}", msg_id=f"m-{i:05d}", timeout=10)
                if isinstance(result, Ack):
                    acks[result.id] = result.seq
                    if len(acks) >= 30:
                        enough.set()
                i += 1

        streamer = asyncio.create_task(stream())
        await asyncio.wait_for(enough.wait(), 30)
        acked_before_backup = dict(acks)
        await _run_cli(cluster, "backup", "--data-dir", str(node_dir), str(backup_dir))
        acked_during = len(acks) - len(acked_before_backup)
        stop.set()
        await asyncio.wait_for(streamer, 15)
        assert acked_during > 0, "the gateway kept serving while the backup ran"

        # disaster: the node dies and its data dir is gone
        await agent.aclose()
        node.kill()
        shutil.rmtree(node_dir)

        # recovery: signing key from the secrets backup, database from the backup
        node_dir.mkdir(mode=0o700)
        shutil.copy2(secrets_backup / IDENTITY_FILE, node_dir / IDENTITY_FILE)
        out = await _run_cli(cluster, "restore", str(backup_dir), "--data-dir", str(node_dir))
        assert "restored" in out and "warning" not in out
        node.start()
        await node.wait_healthy()

        # resume: the customer reconnects to its chat and goes on
        welcome = await customer.reconnect()
        assert welcome is not None and welcome.chat == chat
        await customer.flush(timeout=30)
        assert isinstance(await customer.send_text("still there?", msg_id="after-restore"), Ack)

        token = await login(node.url, "kim@example.com", PASSWORD, secret)
        reader = AgentClient(node.url, token=token, gateway_key=cluster.verify_key)
        await reader.connect()
        history = await reader.history(chat, 0)
        by_id = {m.id: m for m in history if isinstance(m, Msg)}
        for msg_id, seq in acked_before_backup.items():
            assert msg_id in by_id, f"message {msg_id}, acked before the backup, is lost"
            assert by_id[msg_id].seq == seq
            assert by_id[msg_id].text == f"line {int(msg_id[2:])}"
        assert "after-restore" in by_id
        seqs = [m.seq for m in history]
        assert seqs == list(range(1, len(seqs) + 1))

        # the erased chat stays erased: no key, no rows, no resume, nothing to read
        with pytest.raises(ServerError, match="not_found"):
            await reader.history(doomed_chat, 0)
        db = sqlite3.connect(node_dir / "cipherdesk.db")
        try:
            assert (
                db.execute(
                    "SELECT count(*) FROM chat_keys WHERE chat_id = ?", (doomed_chat,)
                ).fetchone()[0]
                == 0
            )
            assert (
                db.execute(
                    "SELECT count(*) FROM messages WHERE chat_id = ?", (doomed_chat,)
                ).fetchone()[0]
                == 0
            )
        finally:
            db.close()
        refused = False
        try:
            again = await doomed.reconnect()
            refused = again is None or again.chat != doomed_chat
        except (ClosedError, ServerError, ProtocolError, ConnectionError):
            refused = True
        assert refused
        await reader.aclose()
        await customer.aclose()
        with contextlib.suppress(Exception):
            await doomed.aclose()
    finally:
        cluster.stop()
