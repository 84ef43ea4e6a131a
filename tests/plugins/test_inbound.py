"""Inbound plugin API (issue 17, item 3): a helpdesk agent's reply reaches the customer's
chat over real sockets — signed, replay-proof, scoped to one tenant's plugin, policy
applied to the text and the agent's name, audited; a chat can be closed from the helpdesk."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

import aiohttp
import pytest

from gateway.protocol import ChatEvent, Msg
from gateway.sdk.client import CustomerClient
from plugins.webhook import signature_header
from tests.gateway.helpers import start_gateway
from tests.plugins.fakes import ZendeskServer

SECRET = "inbound-Zq8LrT2vN5xK9pW3"
CARD = "4111 1111 1111 1111"
EMAIL = "li.wei@example.com"


@pytest.fixture
async def gw(tmp_path):
    zendesk = await ZendeskServer().start()  # the outbound side stays on loopback
    runner, base, svc = await start_gateway(tmp_path, plugins={"allow_private_targets": True})
    await svc.plugins.configure(
        "demo",
        "zendesk",
        {
            "base_url": zendesk.url,
            "email": zendesk.email,
            "api_token": zendesk.token,
            "inbound_secret": SECRET,
        },
    )
    customer = CustomerClient(base, "demo", origin=base, gateway_key=svc.identity.verify_key_b64)
    await customer.connect()
    welcome = await customer.open()
    async with aiohttp.ClientSession() as http:
        yield base, svc, http, customer, welcome.chat
    await customer.aclose()
    await runner.cleanup()
    await zendesk.close()


def signed(body: dict, *, secret: str = SECRET, at: float | None = None) -> tuple[bytes, dict]:
    raw = json.dumps(body).encode()
    ts = int(time.time() if at is None else at)
    return raw, {
        "Content-Type": "application/json",
        "X-Cipherdesk-Signature": signature_header([secret], ts, raw),
    }


async def post(http, base, raw, headers, plugin="zendesk", tenant="demo"):
    async with http.post(f"{base}/api/inbound/{tenant}/{plugin}", data=raw, headers=headers) as r:
        return r.status, await r.json()


async def test_helpdesk_reply_reaches_the_customer_masked_and_audited(gw):
    base, svc, http, customer, chat = gw
    tenant = await svc.store.get_tenant("demo")
    tenant.settings = {**tenant.settings, "policy": {"actions": {"email": "mask"}}}
    await svc.store.update_tenant(tenant)
    svc.tenants.invalidate("demo")  # as PATCH /api/tenant does
    raw, headers = signed(
        {
            "action": "reply",
            "chat": chat,
            "id": "zd-comment-1",
            "text": f"Write to {EMAIL}, we will answer soon.",
            "agent_name": "Li Wei",
        }
    )
    status, body = await post(http, base, raw, headers)
    assert status == 200, body
    assert body["policy"] == "masked"
    msg = await customer.wait_for(Msg, timeout=5)
    assert msg.sender == "agent" and msg.agent == "Li Wei"
    assert EMAIL not in msg.text and "we will answer soon" in msg.text  # the policy ran
    [entry] = [
        a for a in await svc.store.query_audit(tenant_id="demo") if a.action == "plugin.inbound"
    ]
    assert entry.actor == "plugin:zendesk" and entry.target == chat
    assert EMAIL not in json.dumps(entry.details) and "answer" not in json.dumps(entry.details)
    # a replay of the same signed request is refused and posts nothing
    status, body = await post(http, base, raw, headers)
    assert (status, body["error"]["code"]) == (409, "replayed")
    # the vendor retrying the same comment (newly signed) does not post it twice
    raw2, headers2 = signed(json.loads(raw), at=time.time() + 1)
    status, body = await post(http, base, raw2, headers2)
    assert status == 200
    pong = await customer.ping()  # barrier: everything sent before it has arrived
    assert pong is not None
    assert [f for f in customer.drain() if isinstance(f, Msg)] == []


@pytest.mark.parametrize(
    "case", ["bad_secret", "stale", "tampered", "unsigned", "other_plugin", "other_tenant"]
)
async def test_bad_or_misplaced_signatures_are_refused(gw, case):
    base, _svc, http, customer, chat = gw
    body = {"action": "reply", "chat": chat, "text": "hello", "agent_name": "Li Wei"}
    raw, headers = signed(
        body,
        secret="wrong" if case == "bad_secret" else SECRET,
        at=time.time() - 400 if case == "stale" else None,
    )
    plugin, tenant = "zendesk", "demo"
    if case == "tampered":
        raw = raw.replace(b"hello", b"hallo")
    elif case == "unsigned":
        del headers["X-Cipherdesk-Signature"]
    elif case == "other_plugin":
        plugin = "freshdesk"
    elif case == "other_tenant":
        tenant = "globex"
    status, answer = await post(http, base, raw, headers, plugin=plugin, tenant=tenant)
    assert (status, answer["error"]["code"]) == (401, "bad_signature")
    await customer.ping()
    assert [f for f in customer.drain() if isinstance(f, Msg)] == []


async def test_blocked_reply_never_reaches_the_customer(gw):
    base, _svc, http, customer, chat = gw
    raw, headers = signed(
        {
            "action": "reply",
            "chat": chat,
            "id": "c9",
            "text": f"card {CARD}",
            "agent_name": "Li Wei",
        }
    )
    status, body = await post(http, base, raw, headers)
    assert (status, body["policy"], body["seq"]) == (200, "blocked", None)
    await customer.ping()
    assert [f for f in customer.drain() if isinstance(f, Msg)] == []


async def test_zendesk_native_signature_and_policy_checked_name(gw):
    base, _svc, http, customer, chat = gw
    raw = json.dumps(
        {
            "action": "reply",
            "chat": chat,
            "id": "77",
            "text": "Thanks for waiting!",
            "agent_name": "call me on 13812345678",
        }
    ).encode()
    stamp = datetime.fromtimestamp(time.time(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    sig = base64.b64encode(
        hmac.new(SECRET.encode(), stamp.encode() + raw, hashlib.sha256).digest()
    ).decode()
    headers = {
        "Content-Type": "application/json",
        "X-Zendesk-Webhook-Signature": sig,
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
    }
    status, body = await post(http, base, raw, headers)
    assert status == 200, body
    msg = await customer.wait_for(Msg, timeout=5)
    assert msg.text == "Thanks for waiting!" and msg.agent == "Helpdesk"  # name not shown


async def test_close_from_the_helpdesk_and_no_reply_after(gw):
    base, _svc, http, customer, chat = gw
    raw, headers = signed({"action": "close", "chat": chat})
    status, body = await post(http, base, raw, headers)
    assert status == 200, body
    event = await customer.wait_for(ChatEvent, timeout=5)
    assert event.event == "closed"
    raw, headers = signed({"action": "reply", "chat": chat, "text": "late", "id": "9"})
    status, body = await post(http, base, raw, headers)
    assert (status, body["error"]["code"]) == (409, "chat_closed")
    raw, headers = signed({"action": "reply", "chat": "no-such-chat", "text": "x"})
    status, body = await post(http, base, raw, headers)
    assert (status, body["error"]["code"]) == (404, "not_found")
