"""Master key rotation: the admin API on a running gateway, refusals, and the
``cipherdesk keys rotate|rewrap`` commands through a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from crypto.envelope import Keyring, MasterKey
from gateway.app import build_services, close_services
from gateway.config import load_config
from gateway.datadir import MASTER_KEY_FILE
from gateway.keyfiles import rotate_keyring
from gateway.protocol import Ack
from gateway.sdk.client import CustomerClient
from gateway.services import Services
from gateway.store.base import Chat, NewMessage
from gateway.transcripts import open_text, seal_text
from tests.gateway.helpers import (
    DEFAULT_PASSWORD,
    FakeClock,
    bearer,
    free_port,
    login,
    make_agent,
    start_gateway,
    totp_code,
)

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_SECRET = "whsec-Rot8LrT2vN5xK9pW3mB7cY1dF6gH4jS0a"
IDENTITY_SECRET = "identity-secret-0123456789abcdef0123456789abcdef"
ROTATE = "/api/emergency/rotate-keys"


def _ring(path: Path) -> Keyring:
    return Keyring.from_file_content(path.read_bytes())


def _key_texts(ring: Keyring) -> list[str]:
    """Every spelling of the ring's key material that must never appear anywhere."""
    out = []
    for key in ring._keys:
        b64 = key.to_b64()
        out += [b64, b64.rstrip("="), __import__("base64").b64decode(b64).hex()]
    return out


async def _seed_secrets(svc: Services) -> None:
    """A plugin with a secret and a tenant identity secret, sealed by the current key."""
    await svc.plugins.configure(
        "demo",
        "webhook",
        {"url": "http://127.0.0.1:9/hook", "secret": PLUGIN_SECRET, "events": ["chat.closed"]},
        allow_private=True,
    )
    tenant = await svc.store.get_tenant("demo")
    assert tenant is not None
    tenant.identity_secrets_sealed = svc.tenants.seal_identity_secrets("demo", [IDENTITY_SECRET])
    await svc.store.update_tenant(tenant)
    svc.tenants.invalidate("demo")


async def _assert_all_current(svc: Services, keyring: Keyring) -> dict[str, int]:
    """Every sealed value is under ``keyring.current`` and still opens correctly."""
    counts = {"chats": 0, "totp": 0, "identity": 0, "plugins": 0}
    after = ""
    while rows := await svc.store.list_chat_keys(after, 100):
        for chat_id, wrapped in rows:
            assert not keyring.needs_rewrap(wrapped), chat_id
            assert len(keyring.unwrap(wrapped)) == 32
            counts["chats"] += 1
        after = rows[-1][0]
    for agent in await svc.store.list_agents():
        assert agent.totp_secret_sealed
        assert not keyring.needs_rewrap(agent.totp_secret_sealed), agent.email
        assert svc.logins.open_totp_secret(agent)
        counts["totp"] += 1
    for tenant in await svc.store.list_tenants():
        if tenant.identity_secrets_sealed:
            assert not keyring.needs_rewrap(tenant.identity_secrets_sealed)
            assert svc.tenants.identity_secrets(tenant) == [IDENTITY_SECRET]
            counts["identity"] += 1
    for config in await svc.store.list_plugin_configs():
        if config.secrets_sealed:
            assert not keyring.needs_rewrap(config.secrets_sealed)
            assert svc.plugins.open_secrets(config) == {"secret": PLUGIN_SECRET}
            counts["plugins"] += 1
    return counts


async def _history(svc: Services, chat_id: str) -> list[str]:
    """The chat's stored texts, opened with a data key freshly unwrapped from the store."""
    keys = svc.keys
    keys.forget(chat_id)
    key = await keys.get(chat_id)
    assert key is not None
    return [
        open_text(key, chat_id, m.msg_id, m.body_sealed)
        for m in await svc.store.messages_after(chat_id, 0)
    ]


@pytest.fixture
async def gw(tmp_path):
    clock = FakeClock()
    runner, base, svc = await start_gateway(tmp_path, clock=clock)
    async with aiohttp.ClientSession() as http:
        yield http, base, svc, clock
    await runner.cleanup()


async def _operator(http, base, svc, clock) -> str:
    """An installation operator (CLI-only role) logged in; returns the bearer token."""
    creds = await svc.logins.create_operator("ops@example.com", DEFAULT_PASSWORD)
    return await login(
        http, base, "ops@example.com", DEFAULT_PASSWORD, creds.totp_secret, clock.now
    )


async def test_rotate_via_operator_api_on_a_running_gateway(gw, tmp_path):
    http, base, svc, clock = gw
    key_file = tmp_path / "data" / MASTER_KEY_FILE
    old_ring = _ring(key_file)
    assert old_ring.key_ids == svc.keyring.key_ids and len(old_ring.key_ids) == 1
    old_id = old_ring.current.key_id

    _, admin_secret, pw = await make_agent(svc, "root@example.com", role="admin")
    agent, agent_secret, _ = await make_agent(svc, "kim@example.com", role="agent")
    _, sup_secret, _ = await make_agent(svc, "sue@example.com", role="supervisor")
    admin = await login(http, base, "root@example.com", pw, admin_secret, clock.now)
    sup = await login(http, base, "sue@example.com", pw, sup_secret, clock.now)
    ops = await _operator(http, base, svc, clock)
    await _seed_secrets(svc)

    customer = CustomerClient(base, "demo", origin=base)
    await customer.connect()
    try:
        chat_id = (await customer.open(profile={"name": "Jane Roe"})).chat
        assert isinstance(await customer.send_text("first message"), Ack)
        assert isinstance(await customer.send_text("second message"), Ack)
    finally:
        await customer.aclose()

    # Issue 11.4: a tenant admin (who has the emergency permission) and a supervisor are
    # both refused; only the installation operator rotates. A cookie caller without the
    # CSRF header: refused.
    for token in (admin, sup):
        async with http.post(base + ROTATE, headers=bearer(token)) as r:
            assert r.status == 403 and (await r.json())["error"]["code"] == "forbidden"
    clock.advance(30)  # next TOTP step: a second login of the operator, by cookie
    ops_secret = svc.logins.open_totp_secret(await svc.store.get_agent_by_email("ops@example.com"))
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as cookie_http:
        async with cookie_http.post(
            base + "/api/login",
            json={
                "email": "ops@example.com",
                "password": DEFAULT_PASSWORD,
                "otp": totp_code(ops_secret, clock.now),
            },
        ) as r:
            assert r.status == 200, await r.text()
        async with cookie_http.post(base + ROTATE) as r:
            assert r.status == 403 and (await r.json())["error"]["code"] == "csrf"
    assert svc.keyring.key_ids == old_ring.key_ids  # nothing rotated so far

    async with http.post(base + ROTATE, headers=bearer(ops)) as r:
        text = await r.text()
        assert r.status == 200, text
    body = json.loads(text)

    # The key file: two keys, the new one first; the running keyring adopted it in place.
    new_ring = _ring(key_file)
    assert len(new_ring.key_ids) == 2 and new_ring.key_ids[1] == old_id
    new_id = new_ring.current.key_id
    assert svc.keyring.key_ids == new_ring.key_ids
    assert svc.keys._keyring is svc.keyring and svc.logins.keyring is svc.keyring
    assert body["ok"] and body["key_id"] == new_id and body["previous_key_id"] == old_id
    assert body["keys_in_ring"] == 2 and body["skipped"] == 0
    assert body["chat_keys"] == 1
    assert body["totp_secrets"] == 4  # admin, agent, supervisor, operator
    assert body["identity_secrets"] == 1 and body["plugin_secrets"] == 1
    assert "failures" not in body

    counts = await _assert_all_current(svc, svc.keyring)
    assert counts == {"chats": 1, "totp": 4, "identity": 1, "plugins": 1}
    assert await _history(svc, chat_id) == ["first message", "second message"]

    # The agent logs in with TOTP (secret resealed under the new key).
    clock.advance(60)
    kim = await login(http, base, "kim@example.com", DEFAULT_PASSWORD, agent_secret, clock.now)
    async with http.get(base + "/api/me", headers=bearer(kim)) as r:
        assert r.status == 200 and (await r.json())["agent"]["id"] == agent.id

    # A new chat works and its data key is wrapped by the new key.
    fresh = CustomerClient(base, "demo", origin=base)
    await fresh.connect()
    try:
        new_chat = (await fresh.open(profile={"name": "Max"})).chat
        assert isinstance(await fresh.send_text("after rotation"), Ack)
    finally:
        await fresh.aclose()
    wrapped = await svc.store.get_chat_key(new_chat)
    assert wrapped is not None and not svc.keyring.needs_rewrap(wrapped)
    assert await _history(svc, new_chat) == ["after rotation"]

    # Audited with counts; never key material anywhere.
    events = await svc.store.query_audit(action="keys.rotated")
    assert len(events) == 1
    event = events[0]
    assert event.actor == (await svc.store.get_agent_by_email("ops@example.com")).id
    assert event.tenant_id is None  # an installation event, in no tenant's log
    assert event.details["chat_keys"] == 1 and event.details["key_id"] == new_id
    audit_text = json.dumps(event.details)
    async with http.get(base + "/api/audit?action=keys.rotated", headers=bearer(admin)) as r:
        audit_text += await r.text()
    for secret in _key_texts(new_ring):
        assert secret not in text and secret not in audit_text

    # Rotating again moves everything once more; the rewrap was clean, so the key file
    # keeps the current and the previous key only: repeated rotations do not grow it.
    async with http.post(base + ROTATE, headers=bearer(ops)) as r:
        assert r.status == 200
        again = await r.json()
    assert again["keys_in_ring"] == 2 and again["chat_keys"] == 2 and again["skipped"] == 0
    assert _ring(key_file).key_ids == (again["key_id"], new_id)
    for _ in range(3):
        async with http.post(base + ROTATE, headers=bearer(ops)) as r:
            assert r.status == 200 and (await r.json())["keys_in_ring"] == 2
    assert len(_ring(key_file).key_ids) == 2
    await _assert_all_current(svc, svc.keyring)


async def test_rotate_refused_for_env_keys_and_shared_bus(gw, tmp_path):
    http, base, svc, clock = gw
    admin = await _operator(http, base, svc, clock)
    key_file = tmp_path / "data" / MASTER_KEY_FILE
    before = key_file.read_bytes()
    ids = svc.keyring.key_ids

    svc.config.master_key = MasterKey.generate().to_b64()  # as if CIPHERDESK_MASTER_KEY
    async with http.post(base + ROTATE, headers=bearer(admin)) as r:
        body = await r.json()
        assert r.status == 409 and body["error"]["code"] == "env_managed"
        message = body["error"]["message"]
        assert "CIPHERDESK_MASTER_KEY" in message and "keys rewrap" in message
        assert svc.config.master_key not in json.dumps(body)
    svc.config.master_key = ""

    svc.config.bus.url = "redis://127.0.0.1:6379/0"  # checked, never connected to
    try:
        async with http.post(base + ROTATE, headers=bearer(admin)) as r:
            body = await r.json()
            assert r.status == 409 and body["error"]["code"] == "multi_node"
            assert "keys rotate" in body["error"]["message"]
    finally:
        svc.config.bus.url = "memory://"
    assert key_file.read_bytes() == before and svc.keyring.key_ids == ids
    assert await svc.store.query_audit(action="keys.rotated") == []


# ---------------------------------------------------------------------- CLI


def _config(data: Path, env_value: str | None):
    environ = {"CIPHERDESK_MASTER_KEY": env_value} if env_value else {}
    return load_config(
        None,
        environ=environ,
        overrides={
            "server": {"data_dir": str(data)},
            "auth": {"argon2_memory_kib": 1024, "argon2_time_cost": 1},
        },
    )


def cli(data: Path, *args: str, env_value: str | None, port: int) -> subprocess.CompletedProcess:
    conf = data.parent / "cipherdesk.toml"
    conf.write_text(f"[server]\nport = {port}\n")
    env = {k: v for k, v in os.environ.items() if k != "CIPHERDESK_MASTER_KEY"}
    if env_value:
        env["CIPHERDESK_MASTER_KEY"] = env_value
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from gateway.cli.main import main; main(sys.argv[1:])",
            *args,
            "--data-dir",
            str(data),
            "--config",
            str(conf),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env=env,
    )


async def _seed_offline(data: Path, env_value: str | None) -> dict[str, Any]:
    svc = await build_services(_config(data, env_value))
    try:
        _, secret, _ = await make_agent(svc, "kim@example.com")
        await _seed_secrets(svc)
        keys = svc.keys
        chats = []
        for n in range(3):
            key, wrapped = keys.new_key()
            chat = Chat(id=f"chat-{n}", tenant_id="demo", state="queued", created_at=1.0)
            await svc.store.create_chat(chat, wrapped)
            await svc.store.append_message(
                NewMessage(
                    chat_id=chat.id,
                    msg_id="m1",
                    sender="customer",
                    ts=2.0,
                    body_sealed=seal_text(key, chat.id, "m1", f"hello {n}"),
                )
            )
            chats.append(chat.id)
        return {"secret": secret, "chats": chats, "key_ids": svc.keyring.key_ids}
    finally:
        await close_services(svc)


async def _check_offline(data: Path, env_value: str | None, seeded: dict[str, Any]) -> None:
    svc = await build_services(_config(data, env_value))
    try:
        counts = await _assert_all_current(svc, svc.keyring)
        assert counts == {"chats": 3, "totp": 1, "identity": 1, "plugins": 1}
        for n, chat_id in enumerate(seeded["chats"]):
            assert await _history(svc, chat_id) == [f"hello {n}"]
        agent = await svc.store.get_agent_by_email("kim@example.com")
        assert svc.logins.open_totp_secret(agent) == seeded["secret"]
        code = totp_code(seeded["secret"], svc.clock())
        assert svc.logins.totp.match_step(seeded["secret"], code) is not None
    finally:
        await close_services(svc)


async def test_cli_rewrap_after_prepending_a_new_env_key(tmp_path):
    data = tmp_path / "data"
    old = MasterKey.generate().to_b64()
    seeded = await _seed_offline(data, old)

    refused = cli(data, "keys", "rotate", env_value=old, port=free_port())
    assert refused.returncode == 2
    assert "CIPHERDESK_MASTER_KEY" in refused.stderr and "keys rewrap" in refused.stderr

    new = MasterKey.generate()
    value = f"{new.to_b64()},{old}"
    out = cli(data, "keys", "rewrap", env_value=value, port=free_port())
    assert out.returncode == 0, out.stderr
    assert f"current key id     : {new.key_id}" in out.stdout
    assert "chat data keys     : 3" in out.stdout and "TOTP secrets       : 1" in out.stdout
    assert "identity secrets   : 1" in out.stdout and "plugin secrets     : 1" in out.stdout
    assert new.to_b64() not in out.stdout + out.stderr and old not in out.stdout + out.stderr
    assert not (data / MASTER_KEY_FILE).exists()
    await _check_offline(data, value, seeded)

    again = cli(data, "keys", "rewrap", env_value=value, port=free_port())
    assert again.returncode == 0 and "chat data keys     : 0" in again.stdout
    assert "already current    : 6" in again.stdout

    svc = await build_services(_config(data, value))
    try:
        events = await svc.store.query_audit(action="keys.rewrapped")
        assert [e.details["chat_keys"] for e in events] == [0, 3]
    finally:
        await close_services(svc)


async def test_cli_rotate_with_the_key_file(tmp_path):
    data = tmp_path / "data"
    seeded = await _seed_offline(data, None)
    old_id = seeded["key_ids"][0]
    out = cli(data, "keys", "rotate", env_value=None, port=free_port())
    assert out.returncode == 0, out.stderr
    ring = _ring(data / MASTER_KEY_FILE)
    assert len(ring.key_ids) == 2 and ring.key_ids[1] == old_id
    assert f"current key id     : {ring.current.key_id}" in out.stdout
    assert "chat data keys     : 3" in out.stdout
    for secret in _key_texts(ring):
        assert secret not in out.stdout + out.stderr
    await _check_offline(data, None, seeded)


def test_keyring_adopt_swaps_in_place_and_never_drops_keys(tmp_path):
    from crypto.envelope import KeyringError

    ring = Keyring.generate()
    holder = ring  # what every component keeps
    sealed = ring.seal(b"totp", b"aad")
    rotated = rotate_keyring(ring, tmp_path / "master.key")
    assert ring.key_ids != rotated.key_ids  # rotate() leaves the original alone
    ring.adopt(rotated)
    assert holder.key_ids == rotated.key_ids and holder.current.key_id == rotated.key_ids[0]
    assert holder.needs_rewrap(sealed) and holder.open(sealed, b"aad") == b"totp"
    assert not holder.needs_rewrap(holder.reseal(sealed, b"aad"))
    with pytest.raises(KeyringError):
        ring.adopt(Keyring.generate())  # would lose keys still in use
    assert holder.key_ids == rotated.key_ids
