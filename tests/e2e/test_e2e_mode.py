"""End-to-end mode through the real gateway over real sockets, with SDK ends (issue 13).

A tenant key made here (as an admin would, offline) certifies the agents' device keys;
the customer's end pins it. The gateway relays, stores and franks ciphertext: the tests
read its database file, its logs and its plugin events for the plaintext, swap a device
key behind the widget's back, forge reports, transfer, watch, re-key and resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import nacl.public
import pytest

from auth.roles import Permission, Principal, Role
from crypto.e2e import DeviceCertificate, E2EError, TenantSigningKey
from crypto.encoding import b64encode
from gateway.api_tokens import api_tokens
from gateway.chats import ChatError
from gateway.protocol import (
    Accept,
    Ack,
    AgentMsg,
    ChatKeys,
    CustomerMsg,
    CustomerSealedMsg,
    Error,
    Members,
    Msg,
    Notice,
    ReportMsg,
    WrapKeys,
    WrappedKey,
)
from gateway.sdk.client import ServerError
from gateway.sdk.e2e import ChatSecrets, E2EAgentClient, E2ECustomerClient
from gateway.store import _e2e
from gateway.store.sql import read_rows, write
from tests.e2e.conftest import SocketGateway, queue_with, running_gateway
from tests.gateway.helpers import bearer

SECRET = "my card 4111 1111 1111 1111, phone 13800138000"


@dataclass
class E2ETenant:
    """The demo tenant switched to e2e mode with a signing key held by the test."""

    gw: SocketGateway
    http: aiohttp.ClientSession
    signing: TenantSigningKey
    admin: dict[str, str]
    devices: dict[str, tuple[str, nacl.public.PrivateKey]] = field(default_factory=dict)

    async def staff(
        self, email: str, role: str = "agent", *, certify: bool = True
    ) -> E2EAgentClient:
        """Log in, register a device key as the console does, have the admin certify it
        (``certify``), and connect with it."""
        agent_id = await self.gw.login(email, role=role)
        headers = bearer(self.gw.tokens[email])
        device = nacl.public.PrivateKey.generate()
        async with self.http.post(
            f"{self.gw.base}/api/me/e2e/devices",
            json={"public_key": b64encode(bytes(device.public_key)), "name": "laptop"},
            headers=headers,
        ) as r:
            assert r.status == 201, await r.text()
            device_id = (await r.json())["device"]["id"]
        self.devices[email] = (device_id, device)
        if certify:
            status, body = await self.certify(device_id, agent_id, role, device)
            assert status == 200 and body["device"]["state"] == "certified", body
        client = E2EAgentClient(
            self.gw.base,
            token=self.gw.tokens[email],
            device=device,
            device_id=device_id,
            gateway_key=self.gw.svc.identity.verify_key_b64,
        )
        ready = await client.connect()
        assert ready.device == (device_id if certify else None)
        return client

    def certificate(
        self, device_id: str, agent_id: str, role: str, device: nacl.public.PrivateKey, **kw: Any
    ) -> DeviceCertificate:
        now = int(time.time())
        fields: dict[str, Any] = {
            "tenant": "demo",
            "agent": agent_id,
            "name": agent_id,
            "role": role,
            "device": device_id,
            "public_key": b64encode(bytes(device.public_key)),
            "issued_at": now - 60,
            "expires_at": now + 30 * 86_400,
        }
        fields.update(kw)
        return DeviceCertificate(**fields)

    async def certify(
        self,
        device_id: str,
        agent_id: str,
        role: str,
        device: nacl.public.PrivateKey,
        signer: TenantSigningKey | None = None,
        **kw: Any,
    ) -> tuple[int, dict[str, Any]]:
        if "cert_role" in kw:  # a certificate naming another role than the agent's
            role = kw.pop("cert_role")
        signed = (signer or self.signing).certify(
            self.certificate(device_id, agent_id, role, device, **kw)
        )
        async with self.http.put(
            f"{self.gw.base}/api/e2e/devices/{device_id}/certificate",
            json=signed.as_json(),
            headers=self.admin,
        ) as r:
            return r.status, await r.json()

    async def admin_token(self, name: str) -> str:
        """An API token with ``tenant_manage`` for the admin's offline tools (the CLI)."""
        admin = await self.gw.svc.store.get_agent(self.gw.ids["admin@example.com"])
        assert admin is not None
        issued = await api_tokens(self.gw.svc).create(
            admin,
            Principal(admin.id, "demo", Role.ADMIN),
            name,
            [Permission.TENANT_MANAGE.value],
            30,
            ip="127.0.0.1",
        )
        return issued.secret

    def customer(self, **kw: Any) -> E2ECustomerClient:
        return E2ECustomerClient(
            self.gw.base,
            "demo",
            origin=self.gw.base,
            tenant_key=self.signing.verify_key,
            gateway_key=self.gw.svc.identity.verify_key_b64,
            **kw,
        )

    async def chat_with(
        self, agent: E2EAgentClient, **customer: Any
    ) -> tuple[E2ECustomerClient, str]:
        """A customer (``customer``: client options) opens a chat, ``agent`` accepts it and
        receives the chat key."""
        customer_end = self.customer(**customer)
        await customer_end.connect()
        welcome = await customer_end.open()
        await queue_with(agent, welcome.chat)
        await agent.accept(welcome.chat)
        await agent.keys_ready(welcome.chat)
        return customer_end, welcome.chat


@pytest.fixture
async def e2e(tmp_path: Path) -> AsyncIterator[E2ETenant]:
    async with e2e_tenant(tmp_path) as tenant:
        yield tenant


@contextlib.asynccontextmanager
async def e2e_tenant(tmp_path: Path, **config: Any) -> AsyncIterator[E2ETenant]:
    """A gateway (``config``: overrides) whose demo tenant is in e2e mode."""
    async with running_gateway(tmp_path, **config) as gw, aiohttp.ClientSession() as http:
        await gw.login("admin@example.com", role="admin")
        admin = bearer(gw.tokens["admin@example.com"])
        signing = TenantSigningKey.generate()
        async with http.put(
            f"{gw.base}/api/e2e",
            json={"mode": "e2e", "verify_key": signing.verify_key},
            headers=admin,
        ) as r:
            assert r.status == 200, await r.text()
            assert (await r.json()) == {
                "mode": "e2e",
                "verify_key": signing.verify_key,
                "policy": None,
                "release_transcripts": False,
            }
        yield E2ETenant(gw, http, signing, admin)


async def _msg(client: Any, seq: int, chat: str | None = None) -> Msg:
    return await client.wait_for(
        lambda f: isinstance(f, Msg) and f.seq == seq and (chat is None or f.chat == chat)
    )


async def test_sdk_ends_chat_and_the_gateway_keeps_only_ciphertext(
    e2e: E2ETenant, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    svc = e2e.gw.svc
    await svc.plugins.configure(
        "demo",
        "webhook",
        {
            "url": "https://hooks.example.test/e2e",
            "secret": "s" * 32,
            "events": ["chat.opened", "chat.message", "chat.closed"],
        },
    )
    agent = await e2e.staff("ana@example.com")
    customer, chat = await e2e.chat_with(agent)
    assert set(customer.members) == {e2e.devices["ana@example.com"][0]}

    ack = await customer.send_text(SECRET)
    assert isinstance(ack, Ack) and ack.seq == 1
    relayed = await _msg(agent, 1, chat)
    assert relayed.text == "" and relayed.c and relayed.fc and relayed.gt and relayed.e == 1
    assert agent.read(relayed).text == SECRET

    reply = "收到，订单号 A-77 的地址是 上海市浦东新区世纪大道100号"
    assert isinstance(await agent.send_text(chat, reply), Ack)
    seen = await _msg(customer, 2)
    assert seen.dev == e2e.devices["ana@example.com"][0] and customer.read(seen).text == reply
    await agent.close_chat(chat)
    deadline = time.monotonic() + 5
    while not any(
        i.event_type == "chat.closed" for i in await svc.store.list_events(tenant_id="demo")
    ):
        assert time.monotonic() < deadline, "no chat.closed event"
        await asyncio.sleep(0.05)

    # What the gateway keeps and says: ciphertext only, anywhere.
    stored = b"".join(p.read_bytes() for p in (e2e.gw.tmp / "data").glob("cipherdesk.db*"))
    logged = caplog.text
    events = [
        await svc.plugins.decode(i)
        for i in await svc.store.list_events(tenant_id="demo", limit=100)
    ]
    # Whole phrases: a 4-character needle turns up by chance in kilobytes of base64.
    for needle in ("4111 1111 1111 1111", "13800138000", "订单号 A-77", "世纪大道100号"):
        assert needle.encode() not in stored, needle
        assert needle not in logged, needle
        assert needle not in repr(events), needle
    kinds = {i.event_type for i in await svc.store.list_events(tenant_id="demo", limit=100)}
    assert "chat.message" not in kinds and {"chat.opened", "chat.closed"} <= kinds
    closed = next(e for e in events if e and "transcript" in e)
    assert [row.get("e2e") for row in closed["transcript"]] == [True, True]
    assert all("text" not in row for row in closed["transcript"])
    for client in (customer, agent):
        await client.aclose()


async def test_a_new_message_is_relayed_without_opening_what_the_gateway_just_sealed(
    e2e: E2ETenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The relayed frame of a new e2e message is made from the id and body the gateway has
    just sealed for storage (the code before opened both again: two decryptions per
    message); a resend of an id already stored is relayed with the stored body."""
    import gateway.chats

    agent = await e2e.staff("ana@example.com")
    customer, chat = await e2e.chat_with(agent)
    opened: list[str] = []

    def recording(name: str) -> Any:
        real = getattr(gateway.chats, name)
        return lambda *args: opened.append(name) or real(*args)

    for name in ("open_text", "open_msg_id"):
        monkeypatch.setattr(gateway.chats, name, recording(name))
    published: list[Msg] = []
    real_publish = e2e.gw.svc.bus.publish

    async def publish(topic: str, event: Any) -> None:
        if isinstance(event.frame, Msg):
            published.append(event.frame)
        await real_publish(topic, event)

    monkeypatch.setattr(e2e.gw.svc.bus, "publish", publish)
    first = await customer.send_text("first words", msg_id="m-1")
    relayed = await _msg(agent, 1, chat)
    assert (relayed.id, agent.read(relayed).text) == ("m-1", "first words")
    assert opened == []
    again = await customer.send_text("other words", msg_id="m-1")
    assert again.seq == first.seq == 1
    assert sorted(opened) == ["open_msg_id", "open_text"]  # the stored message, opened
    assert [(f.id, agent.read(f).text) for f in published] == [("m-1", "first words")] * 2
    for client in (customer, agent):
        await client.aclose()


async def test_a_device_key_the_tenant_did_not_certify_is_refused_by_the_customer(
    e2e: E2ETenant,
) -> None:
    """A gateway (or its database) that swaps in a key of its own cannot produce the
    tenant's signature: the customer's end refuses the device and never wraps to it."""
    agent = await e2e.staff("ana@example.com")
    device_id, _ = e2e.devices["ana@example.com"]
    # The "gateway" replaces the device's key and certificate with ones it made.
    forger = TenantSigningKey.generate()
    fake = nacl.public.PrivateKey.generate()
    swapped = forger.certify(
        e2e.certificate(device_id, e2e.gw.ids["ana@example.com"], "agent", fake)
    )
    device = await e2e.gw.svc.store.get_e2e_device(device_id)
    assert device is not None
    device.public_key, device.certificate, device.signature = (
        b64encode(bytes(fake.public_key)),
        swapped.body,
        swapped.sig,
    )
    await _replace_device(e2e, device)

    customer = e2e.customer()
    await customer.connect()
    welcome = await customer.open()
    await queue_with(agent, welcome.chat)
    await agent.accept(welcome.chat)
    await customer.wait_for(lambda f: isinstance(f, Members) and f.devices)
    await customer.members_settled()
    assert [(r.device, r.code) for r in customer.refused] == [(device_id, "bad_signature")]
    assert customer.members == {}
    assert await e2e.gw.svc.store.e2e_wraps_for(welcome.chat, device_id) == []
    await customer.send_text(SECRET)
    relayed = await _msg(agent, 1, welcome.chat)
    with pytest.raises(E2EError, match="no chat key"):
        agent.read(relayed)
    for client in (customer, agent):
        await client.aclose()


async def _replace_device(e2e: E2ETenant, device: Any) -> None:
    """Overwrite a device row as an attacker with database access would."""
    store = e2e.gw.svc.store
    await store._query(write("DELETE FROM e2e_devices WHERE id = ?", device.id))
    await store._query(write(_e2e.INSERT_DEVICE, *_e2e.device_params(device)))


async def test_franking_reports_verify_and_forgeries_fail(e2e: E2ETenant) -> None:
    agent = await e2e.staff("ana@example.com")
    supervisor = await e2e.staff("sue@example.com", role="supervisor")
    customer, chat = await e2e.chat_with(agent)
    await agent.send_text(chat, "you are an idiot, pay 500 to 6222 0200 1234 5678")
    rude = await _msg(customer, 1)

    forged_text = await customer.report(rude, text="you are a genius")
    assert forged_text.verified is False
    forged_key = await customer.report(rude, franking_key=b64encode(bytes(32)))
    assert forged_key.verified is False
    real = await customer.report(rude, reason="abuse")
    assert real.verified is True and real.seq == 1

    flags = await e2e.gw.svc.store.list_flags("demo")
    (flag,) = [f for f in flags if f.chat_id == chat]
    assert flag.kinds == ["report:abuse"] and flag.seq == 1
    audit = await e2e.gw.svc.store.query_audit(action="message.reported", limit=10)
    assert sorted(a.details["verified"] for a in audit) == [False, False, True]
    original = await e2e.gw.svc.chats.flag_original(
        _principal(e2e, "sue@example.com", "supervisor"), flag.id, None
    )
    assert original["original"] == "you are an idiot, pay 500 to 6222 0200 1234 5678"

    # The agent reports a customer message the same way.
    await customer.send_text("threat text")
    threat = await _msg(agent, 2, chat)
    assert (await agent.report(threat, reason="other")).verified is True
    for client in (customer, agent, supervisor):
        await client.aclose()


def _principal(e2e: E2ETenant, email: str, role: str) -> Principal:
    return Principal(agent_id=e2e.gw.ids[email], tenant_id="demo", role=Role(role))


async def test_transfer_watch_rekey_and_resume(e2e: E2ETenant) -> None:
    ana = await e2e.staff("ana@example.com")
    bob = await e2e.staff("bob@example.com")
    sue = await e2e.staff("sue@example.com", role="supervisor")
    customer, chat = await e2e.chat_with(ana)
    await customer.send_text("before transfer")
    await _msg(ana, 1, chat)

    # Transfer: bob gets epoch 1 (history) and the new epoch; ana is re-keyed out.
    await ana.transfer(chat, to_agent=e2e.gw.ids["bob@example.com"])
    keys = await bob.keys_ready(chat, epoch=2)
    assert set(keys) == {1, 2}
    await customer.members_settled()
    assert customer.secrets.epoch == 2
    assert bob.read(await _msg(bob, 1, chat)).text == "before transfer"
    await customer.send_text("after transfer")
    after = await _msg(bob, 2, chat)
    assert after.e == 2 and bob.read(after).text == "after transfer"
    assert 2 not in ana.chat_keys.get(chat, {})

    # A supervisor watching: visible to the customer, given the keys, reads everything.
    await sue.watch(chat)
    members = await customer.wait_for(
        lambda f: isinstance(f, Members) and any(d.reason == "watch" for d in f.devices)
    )
    assert {d.reason for d in members.devices} == {"assigned", "watch"}
    await sue.keys_ready(chat, epoch=2)
    history = await sue.history(chat)
    assert [sue.read(m).text for m in history] == ["before transfer", "after transfer"]
    customer.drain()  # earlier member lists (one device too) stay out of the next wait
    await sue.unwatch(chat)
    await customer.wait_for(lambda f: isinstance(f, Members) and len(f.devices) == 1)
    await customer.members_settled()
    assert customer.secrets.epoch == 3  # the supervisor left: re-keyed

    # Resume after a reload on both sides: the customer keeps its keys, the console its
    # device; history opens again.
    info, secrets = customer.resume_info, ChatSecrets(dict(customer.secrets.keys))
    await customer.aclose()
    back = e2e.customer(resume=info, secrets=secrets)
    await back.connect()
    await bob.send_text(chat, "welcome back")
    reply = await _msg(back, 3)
    assert back.read(reply).text == "welcome back"
    await bob.aclose()
    device_id, device = e2e.devices["bob@example.com"]
    bob2 = E2EAgentClient(
        e2e.gw.base, token=e2e.gw.tokens["bob@example.com"], device=device, device_id=device_id
    )
    await bob2.connect()
    await bob2.wait_for(lambda f: isinstance(f, ChatKeys) and f.chat == chat)
    assert [bob2.read(m).text for m in await bob2.history(chat)] == [
        "before transfer",
        "after transfer",
        "welcome back",
    ]
    for client in (back, ana, bob2, sue):
        await client.aclose()


async def test_what_an_e2e_chat_refuses(e2e: E2ETenant) -> None:
    ana = await e2e.staff("ana@example.com")
    plain = await e2e.staff("pat@example.com", certify=False)
    customer, chat = await e2e.chat_with(ana)
    with pytest.raises(ServerError) as refused:
        await customer._request(  # a plaintext message: the gateway would read it
            CustomerMsg(id="m-plain", text="hello"),
            "m-plain",
            5,
        )
    assert refused.value.code == "e2e_required"
    with pytest.raises(ServerError) as plain_agent:
        await ana._request(
            AgentMsg(chat=chat, id="a-plain", text="hi"),
            "a-plain",
            5,
        )
    assert plain_agent.value.code == "e2e_required"
    # A helpdesk holds no chat key either: its replies are refused the same way.
    with pytest.raises(ChatError) as helpdesk:
        await e2e.gw.svc.chats.post_helpdesk_reply(
            "demo", chat, "h-1", "hello from the helpdesk", plugin="zendesk", name="Zoe"
        )
    assert helpdesk.value.code == "e2e_required"
    # An agent without a certified device can neither take nor be given the chat.
    with pytest.raises(ServerError) as no_device:
        await ana.transfer(chat, to_agent=e2e.gw.ids["pat@example.com"])
    assert no_device.value.code == "e2e_device_required"
    other, _ = await _second_chat(e2e)
    await plain.send(Accept(chat=other))
    error = await plain.wait_for(lambda f: getattr(f, "code", None) == "e2e_device_required")
    assert error.ref == other
    # A wrap for a device that is not a member is refused.
    await customer.send(
        WrapKeys(epoch=1, keys=[WrappedKey(device=e2e.devices["pat@example.com"][0], k="A" * 120)])
    )
    stranger = await customer.wait_for(lambda f: isinstance(f, Error))
    assert stranger.code == "not_member"
    # An epoch key that is not ASCII digits ("²" passes str.isdigit but not int()) is a
    # malformed frame: close 1008 with the reason, not an internal error.
    await customer.send(
        WrapKeys(
            epoch=2,
            keys=[],
            older={"²": []},  # type: ignore[dict-item]
        )
    )
    code, reason = await customer.wait_closed(5)
    assert code == 1008 and "key" in (reason or ""), (code, reason)
    for client in (customer, ana, plain):
        await client.aclose()


async def _second_chat(e2e: E2ETenant) -> tuple[str, E2ECustomerClient]:
    customer = e2e.customer()
    await customer.connect()
    welcome = await customer.open()
    return welcome.chat, customer


async def test_certificates_are_checked_against_the_device_before_they_are_stored(
    e2e: E2ETenant,
) -> None:
    await e2e.staff("ana@example.com", certify=False)
    device_id, device = e2e.devices["ana@example.com"]
    agent_id = e2e.gw.ids["ana@example.com"]
    cases = [
        ({"signer": TenantSigningKey.generate()}, "certificate_bad_signature"),
        ({"cert_role": "admin"}, "certificate_mismatch"),
        ({"agent": "agt_other"}, "certificate_mismatch"),
        ({"public_key": b64encode(bytes(32))}, "certificate_mismatch"),
        ({"tenant": "other"}, "certificate_wrong_tenant"),
        ({"expires_at": int(time.time()) - 10}, "certificate_expired"),
    ]
    for changes, code in cases:
        status, body = await e2e.certify(device_id, agent_id, "agent", device, **changes)
        assert (status, body["error"]["code"]) == (400, code), changes
    status, body = await e2e.certify(device_id, agent_id, "agent", device)
    assert status == 200 and body["device"]["state"] == "certified"
    # Own devices are listed with the certificate; the public endpoint gives the key.
    async with e2e.http.get(
        f"{e2e.gw.base}/api/me/e2e/devices", headers=bearer(e2e.gw.tokens["ana@example.com"])
    ) as r:
        (mine,) = (await r.json())["devices"]
    assert mine["id"] == device_id and mine["certificate"] and len(mine["fingerprint"]) == 39
    async with e2e.http.get(f"{e2e.gw.base}/api/public/e2e/demo") as r:
        assert (await r.json())["verify_key"] == e2e.signing.verify_key
    async with e2e.http.get(f"{e2e.gw.base}/api/public/e2e/nope-{uuid.uuid4().hex[:6]}") as r:
        assert r.status == 404
    # Revoked: no longer a member anyone wraps to.
    async with e2e.http.delete(
        f"{e2e.gw.base}/api/e2e/devices/{device_id}", headers=e2e.admin
    ) as r:
        assert r.status == 200
    assert await e2e.gw.svc.e2e.usable_device(agent_id, device_id) is None
    status, body = await e2e.certify(device_id, agent_id, "agent", device)
    assert (status, body["error"]["code"]) == (409, "revoked")


async def test_an_inspect_tenant_refuses_sealed_frames(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as gw:
        customer = gw.customer()
        await customer.connect()
        await customer.open()
        frame = CustomerSealedMsg(id="m1", c="A" * 60, fc=b64encode(bytes(32)), e=1)
        with pytest.raises(ServerError) as refused:
            await customer._request(frame, "m1", 5)
        assert refused.value.code == "not_e2e"
        await customer.aclose()


async def _cli(*args: str, stdin: str = "", **env: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; from gateway.cli.main import main; main(sys.argv[1:])",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **env},
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_the_cli_makes_the_key_and_certifies_pending_devices(
    tmp_path: Path, e2e: E2ETenant
) -> None:
    """The admin's offline tools: keygen writes an encrypted key file (mode 0600) and
    prints the verify key; certify signs the pending devices and uploads them with an
    API token; a wrong passphrase is one line, not a traceback."""
    key_file = tmp_path / "acme-signing.json"
    env = {"CIPHERDESK_E2E_PASSPHRASE": "correct horse battery staple"}
    rc, out, err = await _cli(
        "e2e",
        "keygen",
        "--tenant",
        "demo",
        "--out",
        str(key_file),
        "--strength",
        "interactive",
        **env,
    )
    assert rc == 0, err
    verify_key = out.split("verify key: ")[1].split()[0]
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert "correct horse" not in key_file.read_text()
    async with e2e.http.put(
        f"{e2e.gw.base}/api/e2e", json={"verify_key": verify_key}, headers=e2e.admin
    ) as r:
        assert r.status == 200

    await e2e.staff("ana@example.com", certify=False)
    device_id = e2e.devices["ana@example.com"][0]
    token = await e2e.admin_token("e2e certify")
    certify = ("e2e", "certify", "--key", str(key_file), "--url", e2e.gw.base)
    rc, out, err = await _cli(*certify, "--token", token, "--yes", **env)
    assert rc == 0, err
    assert device_id in out and "certified until" in out
    usable = await e2e.gw.svc.e2e.usable_device(e2e.gw.ids["ana@example.com"], device_id)
    assert usable is not None
    rc, out, err = await _cli(
        *certify, "--token", token, CIPHERDESK_E2E_PASSPHRASE="wrong passphrase!"
    )
    assert rc != 0 and "wrong passphrase" in err and "Traceback" not in err


class RedisMonitor:
    """Every command the Redis server executes, as raw bytes (``MONITOR`` on its own
    connection): what an eavesdropper on the gateway's Redis traffic would see."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 6379
        self.seen = bytearray()
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> RedisMonitor:
        reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._writer.write(b"MONITOR\r\n")
        await self._writer.drain()
        assert (await reader.readline()).startswith(b"+OK")

        async def collect() -> None:
            while chunk := await reader.read(65536):
                self.seen += chunk

        self._task = asyncio.create_task(collect())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._writer is not None and self._task is not None
        await asyncio.sleep(0.2)  # the last commands reach the monitor
        self._writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._task, 5)


async def test_redis_and_postgres_carry_only_ciphertext(
    tmp_path: Path, postgres_dsn: str, redis_url: str, redis_prefix: str
) -> None:
    """The multi-node set-up: PostgreSQL store, Redis bus. Redis traffic (MONITOR) and
    the messages table see no plaintext of an e2e chat."""
    async with e2e_tenant(
        tmp_path,
        store={"url": postgres_dsn},
        bus={"url": f"{redis_url}?prefix={redis_prefix}bus:"},
    ) as tenant:
        gw = tenant.gw
        async with RedisMonitor(redis_url) as monitor:
            agent = await tenant.staff("ana@example.com")
            customer, chat = await tenant.chat_with(agent)
            await customer.send_text(SECRET)
            assert agent.read(await _msg(agent, 1, chat)).text == SECRET
            await agent.send_text(chat, "回复：世纪大道100号已登记")
            assert customer.read(await _msg(customer, 2)).text == "回复：世纪大道100号已登记"
        assert len(monitor.seen) > 1000  # the bus did carry the chat
        for needle in ("4111 1111 1111 1111", "13800138000", "世纪大道100号"):
            assert needle.encode() not in monitor.seen, needle
        rows = await gw.svc.store._query(
            read_rows("SELECT body_sealed FROM messages WHERE chat_id = ?", chat)
        )
        assert len(rows) == 2
        raw = b"".join(bytes(r["body_sealed"]) for r in rows)
        assert b"4111 1111" not in raw and "世纪大道".encode() not in raw
        for client in (customer, agent):
            await client.aclose()


async def test_a_revoked_device_is_keyed_out_of_open_chats(e2e: E2ETenant) -> None:
    """An admin revokes an agent's device mid-chat: the customer's end gets a member list
    without it and re-keys, so what follows is not readable with the keys it held."""
    ana = await e2e.staff("ana@example.com")
    customer, chat = await e2e.chat_with(ana)
    await customer.send_text("before the revocation")
    assert ana.read(await _msg(ana, 1, chat)).text == "before the revocation"
    device_id = e2e.devices["ana@example.com"][0]
    customer.drain()
    async with e2e.http.delete(
        f"{e2e.gw.base}/api/e2e/devices/{device_id}", headers=e2e.admin
    ) as r:
        assert r.status == 200
    await customer.wait_for(lambda f: isinstance(f, Members) and not f.devices)
    await customer.members_settled()
    assert customer.secrets.epoch == 2
    assert (await e2e.gw.svc.store.get_chat(chat)).e2e_epoch == 2
    await customer.send_text("after the revocation")
    after = await _msg(ana, 2, chat)
    assert after.e == 2
    with pytest.raises(E2EError, match="no chat key"):
        ana.read(after)
    audit = await e2e.gw.svc.store.query_audit(action="e2e.device_revoked", limit=5)
    assert [a.target for a in audit] == [device_id]
    for client in (customer, ana):
        await client.aclose()


async def test_a_customer_export_lists_e2e_messages_without_text(e2e: E2ETenant) -> None:
    """Right of access: the gateway exports what it holds -- for an e2e chat, that the
    messages exist and when, never text it cannot read (and no error)."""
    agent = await e2e.staff("ana@example.com")
    customer, chat = await e2e.chat_with(agent)
    await customer.send_text(SECRET)
    await agent.send_text(chat, "好的")
    token = customer.resume_info.token
    async with e2e.http.post(
        f"{e2e.gw.base}/api/customers/export", json={"chat_token": token}, headers=e2e.admin
    ) as r:
        assert r.status == 200, await r.text()
        export = await r.json()
    (exported,) = export["chats"]
    assert [(m["from"], m["text"], m["e2e"]) for m in exported["messages"]] == [
        ("customer", "", True),
        ("agent", "", True),
    ]
    for client in (customer, agent):
        await client.aclose()


async def test_the_history_transcript_marks_e2e_messages(e2e: E2ETenant) -> None:
    """The read-only history of a closed e2e chat lists its messages as e2e, without text."""
    agent = await e2e.staff("ana@example.com")
    customer, chat = await e2e.chat_with(agent)
    await customer.send_text(SECRET)
    await agent.close_chat(chat)
    headers = bearer(e2e.gw.tokens["ana@example.com"])
    async with e2e.http.get(f"{e2e.gw.base}/api/history/chats/{chat}", headers=headers) as r:
        assert r.status == 200, await r.text()
        transcript = await r.json()
    assert [(m["text"], m["e2e"]) for m in transcript["messages"]] == [("", True)]
    for client in (customer, agent):
        await client.aclose()


async def test_reports_spend_the_message_budget(tmp_path: Path) -> None:
    """Each report writes an audit row and, verified, a supervisor flag: reports spend the
    chat's message budget, so a customer cannot flood the supervisors with them."""
    limits = {"limits": {"messages_per_chat": "3/60s"}}
    async with e2e_tenant(tmp_path, ratelimit=limits) as tenant:
        gw = tenant.gw
        agent = await tenant.staff("ana@example.com")
        customer, chat = await tenant.chat_with(agent)
        await agent.send_text(chat, "a rude reply")
        rude = await _msg(customer, 1)
        await customer.send_text("hello")  # 1 of 3
        assert (await customer.report(rude)).verified  # 2 of 3
        assert (await customer.report(rude)).verified  # 3 of 3
        await customer.send(
            ReportMsg(
                seq=rude.seq,
                text="a rude reply",
                fk=customer.read(rude).franking_key,
                gt=rude.gt or "",
            )
        )
        limited = await customer.wait_for(Notice)
        assert (limited.action, limited.id) == ("limited", "report-1")
        flags = [f for f in await gw.svc.store.list_flags("demo") if f.chat_id == chat]
        assert len(flags) == 2
        for client in (customer, agent):
            await client.aclose()
