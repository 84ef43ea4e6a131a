"""Upgrading a database of the first release, with its data, to this code's schema.

The first release's database is rebuilt from a committed fixture (schema 0001 plus the
rows that release wrote, see ``fixtures/make_release1.py``); the current code opens it,
which applies *every* migration present (so this test keeps covering upgrades as
migrations are added), and the data must then be readable through the gateway's own
services with the fixture's master key: messages decrypt, the erased chat stays erased,
agents log in with their password and TOTP, audit rows are there, and new writes work.
Also: a database newer than the code is refused (no downgrades), except one version
declared compatible for rolling upgrades.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path

import asyncpg
import pytest

from auth.totp import TotpVerifier
from gateway.app import build_services, close_services
from gateway.config import load_config
from gateway.datadir import MASTER_KEY_FILE
from gateway.keyfiles import load_or_create_keyring
from gateway.store import open_store, sqlite_path
from gateway.store.migrate import SchemaTooNew, latest_version, load_migrations
from tests.ops.release_fixture import build_release1, release1

ROOT = Path(__file__).resolve().parents[2]


def _config(store_url: str, data_dir: Path):
    return load_config(
        None,
        environ={"CIPHERDESK_MASTER_KEY": release1()["master_key"]},
        overrides={
            "server": {"data_dir": str(data_dir)},
            "store": {"url": store_url},
            "auth": {"argon2_memory_kib": 1024, "argon2_time_cost": 1},
        },
    )


async def _versions(store_url: str, data_dir: Path) -> list[int]:
    if store_url.startswith("sqlite:"):
        conn = sqlite3.connect(sqlite_path(store_url, data_dir))
        try:
            return [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY 1")]
        finally:
            conn.close()
    conn = await asyncpg.connect(store_url)
    try:
        return [r[0] for r in await conn.fetch("SELECT version FROM schema_version ORDER BY 1")]
    finally:
        await conn.close()


async def test_release1_database_upgrades_with_its_data(store_url: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    await build_release1(store_url, data_dir)
    assert await _versions(store_url, data_dir) == [1]
    fixture = release1()
    expected = fixture["expected"]
    clock = [fixture["clock"] + 3600]
    svc = await build_services(_config(store_url, data_dir), clock=lambda: clock[0])
    try:
        # every migration present was applied, in order, once
        assert await svc.store.schema_version() == latest_version("sqlite")
        assert await _versions(store_url, data_dir) == [
            m.version for m in load_migrations("sqlite")
        ]

        tenant = await svc.tenants.get("acme")
        assert tenant is not None and tenant.name == "Acme 商城"
        assert svc.tenants.identity_secrets(tenant) == ["acme-identity-secret-0123456789abcdef"]
        agents = {a.email: a for a in await svc.store.list_agents("acme")}
        assert set(agents) == set(expected["agents"])

        kept = expected["chats"]["kept"]
        messages = await svc.chats.messages(kept["id"], 0)
        assert [(m.seq, m.id, m.sender, m.text) for m in messages] == [
            (m["seq"], m["id"], m["sender"], m["text"]) for m in kept["messages"]
        ]
        # the profile sealed by the first release still opens
        chat = await svc.store.get_chat(kept["id"])
        assert chat is not None
        customer = await svc.chats.customer_of(chat)
        assert customer is not None and customer.get("name") == "李雷"

        erased = expected["chats"]["erased"]
        assert await svc.store.get_chat_key(erased["id"]) is None
        assert await svc.chats.messages(erased["id"], 0) == []

        audit = await svc.store.query_audit(tenant_id="acme", limit=100)
        assert {e.action for e in audit} >= {"agent.created", "login.ok", "chat.erased"}

        # credentials written by the first release still work (argon2 hash, sealed TOTP)
        ana = expected["agents"]["ana@acme.test"]
        otp = TotpVerifier().current_code(ana["totp_secret"], clock[0])
        result = await svc.logins.login("ana@acme.test", fixture["password"], otp, ip="192.0.2.20")
        assert result.agent.id == ana["id"]

        # and the upgraded database takes new writes: the chat continues gap-free
        await svc.chats.post_customer_message("acme", kept["id"], "after-upgrade", "还在吗？")
        after = await svc.chats.messages(kept["id"], 0)
        assert [m.seq for m in after] == [1, 2, 3, 4] and after[-1].text == "还在吗？"
        newest = await svc.store.query_audit(tenant_id="acme", limit=1)
        assert newest[0].id > max(r["id"] for r in fixture["tables"]["audit_log"])
    finally:
        await close_services(svc)


async def _pretend_newer(store_url: str, data_dir: Path, version: int, compatible: bool) -> None:
    sql = (
        "INSERT INTO schema_version (version, name, applied_at, compatible_with_previous)"
        " VALUES ({v}, 'from_the_future', 0, {c})"
    )
    if store_url.startswith("sqlite:"):
        conn = sqlite3.connect(sqlite_path(store_url, data_dir), isolation_level=None)
        try:
            conn.execute(sql.format(v=version, c=int(compatible)))
        finally:
            conn.close()
        return
    conn = await asyncpg.connect(store_url)
    try:
        await conn.execute(sql.format(v=version, c=str(compatible).lower()))
    finally:
        await conn.close()


async def _open_close(store_url: str, data_dir: Path) -> None:
    store = open_store(store_url, data_dir)
    await store.open()
    await store.close()


async def test_newer_schema_is_refused_unless_declared_compatible(
    store_url: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    await _open_close(store_url, data_dir)  # current schema
    latest = latest_version("sqlite")

    await _pretend_newer(store_url, data_dir, latest + 1, compatible=True)
    await _open_close(store_url, data_dir)  # rolling upgrade: N may run on N+1 (compatible)

    await _pretend_newer(store_url, data_dir, latest + 2, compatible=True)
    with pytest.raises(SchemaTooNew) as refused:  # never two versions behind
        await _open_close(store_url, data_dir)
    message = str(refused.value)
    assert "\n" not in message
    assert f"at version {latest + 2}" in message and f"up to {latest}" in message
    assert "downgrades are not supported" in message


async def test_newer_incompatible_schema_is_refused(store_url: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    await _open_close(store_url, data_dir)
    await _pretend_newer(store_url, data_dir, latest_version("sqlite") + 1, compatible=False)
    with pytest.raises(SchemaTooNew):
        await _open_close(store_url, data_dir)


async def test_cli_refuses_a_newer_database_with_one_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    url = f"sqlite:///{data_dir}/cipherdesk.db"
    await _open_close(url, data_dir)
    await _pretend_newer(url, data_dir, latest_version("sqlite") + 1, compatible=False)
    load_or_create_keyring(data_dir / MASTER_KEY_FILE, None)  # an installation, newer schema
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        "tenant",
        "list",
        "--data-dir",
        str(data_dir),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 2, (out, err)
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cipherdesk: the database schema is at")


def test_compatible_mark_is_declared_the_same_on_both_engines() -> None:
    sqlite = {m.version: m.compatible_with_previous for m in load_migrations("sqlite")}
    postgres = {m.version: m.compatible_with_previous for m in load_migrations("postgres")}
    assert sqlite == postgres
