"""Erase by customer (issue 15.3): a customer's chats are found through keyed customer
keys (no plaintext identifier in the database), on SQLite and PostgreSQL, and erased over
real HTTP (``POST /api/customers/erase``): exactly one identifier, admins only,
approval-gated, answered with a signed destruction report."""

from __future__ import annotations

import json

import aiohttp
import pytest

from auth.identity import sign_identity
from gateway.protocol import Profile
from gateway.reports import chat_hash, verify_file
from gateway.services import Services
from gateway.store.base import OutboxEvent
from tests.gateway.helpers import (
    FakeClock,
    bearer,
    login,
    make_agent,
    record_erasures,
    start_gateway,
)

SECRET = "s" * 40


async def _identity_mode(svc: Services) -> None:
    tenant = await svc.store.get_tenant("demo")
    assert tenant is not None
    tenant.identity_mode = "optional"
    tenant.identity_secrets_sealed = svc.tenants.seal_identity_secrets("demo", [SECRET])
    await svc.store.update_tenant(tenant)
    svc.tenants.invalidate("demo")


def _token(svc: Services, nonce: str, **claims: str) -> str:
    return sign_identity(
        SECRET, {"sub": "cust-42", "exp": int(svc.clock()) + 600, "nonce": nonce, **claims}
    )


async def _chat(svc: Services, *, token: str | None = None, email: str | None = None) -> str:
    profile = Profile(email=email) if email else None
    opened = await svc.chats.open_chat("demo", identity_token=token, profile=profile)
    return opened.chat.id


async def test_a_customers_chats_are_found_by_keyed_hash_and_erased(
    svc: Services, clock: FakeClock
) -> None:
    await _identity_mode(svc)
    verified = await _chat(svc, token=_token(svc, "n1", email="Ann@Example.com"))
    typed = await _chat(svc, email=" ann@example.COM ")
    sub_only = await _chat(svc, token=_token(svc, "n2"))
    opened_bob = await svc.chats.open_chat("demo", profile=Profile(email="bob@example.com"))
    bob = opened_bob.chat.id
    anonymous = await _chat(svc)

    assert await svc.chats.customer_chats("demo", "sub", "cust-42") == sorted([verified, sub_only])
    assert await svc.chats.customer_chats("demo", "email", "ANN@example.com") == sorted(
        [verified, typed]
    )
    assert await svc.chats.customer_chats("demo", "email", "nobody@example.com") == []
    assert await svc.chats.customer_chats("other", "sub", "cust-42") == []  # per tenant
    assert await svc.chats.customer_chats("demo", "chat_token", opened_bob.token) == [bob]
    assert await svc.chats.customer_chats("demo", "chat_token", "x" * 40) == []
    stored = await svc.store.customer_keys_of(verified)
    assert len(stored) == 2 and all(len(k) == 64 for k in stored)
    assert not any("ann" in k or "cust-42" in k for k in stored)  # keyed hashes only

    # A pending plugin event of the customer is dropped with the chat.
    await svc.store.enqueue_events(
        [OutboxEvent("demo", "webhook", "chat.message", "k1", b"x", typed, clock())]
    )
    report = await svc.chats.erase_customer("demo", "email", "ann@example.com", actor="a-1")
    body = verify_file(report.export(), svc.identity.verify_key_b64)
    assert body["counts"] == {"chats": 2}
    assert sorted(body["chats"]) == sorted(chat_hash(c) for c in (verified, typed))
    for chat_id in (verified, typed):
        assert await svc.store.get_chat_key(chat_id) is None
        assert await svc.store.customer_keys_of(chat_id) == []
    assert [e for e in await svc.store.list_events(tenant_id="demo") if e.chat_id == typed] == []
    for kept in (sub_only, bob, anonymous):
        assert await svc.store.get_chat_key(kept) is not None
    [audit] = await svc.store.query_audit(action="customer.erased")
    assert (audit.actor, audit.details.get("chats"), audit.details.get("by")) == ("a-1", 2, "email")
    assert "ann" not in repr(audit)

    # The rest of the customer (same sub) is found from one chat's token.
    report = await svc.chats.erase_customer("demo", "sub", "cust-42", actor="a-1")
    assert verify_file(report.export(), svc.identity.verify_key_b64)["chats"] == [
        chat_hash(sub_only)
    ]
    again = await svc.chats.erase_customer("demo", "sub", "cust-42", actor="a-1")
    assert verify_file(again.export(), svc.identity.verify_key_b64)["counts"] == {"chats": 0}


async def test_a_customers_chats_are_shredded_once_after_their_erasure(
    svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each chat is erased without shredding and the run is shredded once (on SQLite a
    WAL checkpoint per chat tripled an erase's cost)."""
    chats = [await _chat(svc, email="ann@example.com") for _ in range(3)]
    erases, shreds = record_erasures(svc.store, monkeypatch)
    await svc.chats.erase_customer("demo", "email", "ann@example.com", actor="a-1")
    assert sorted(erases) == sorted((chat_id, False) for chat_id in chats)
    assert shreds == [3]


@pytest.fixture
async def gw(tmp_path):
    clock = FakeClock()
    runner, base, svc = await start_gateway(tmp_path, clock=clock)
    async with aiohttp.ClientSession() as http:
        _a, secret, pw = await make_agent(svc, "boss@example.com", role="admin")
        admin = await login(http, base, "boss@example.com", pw, secret, clock.now)
        _b, secret2, pw2 = await make_agent(svc, "sup@example.com", role="supervisor")
        supervisor = await login(http, base, "sup@example.com", pw2, secret2, clock.now)
        yield http, base, svc, admin, supervisor
    await runner.cleanup()


async def test_erase_by_customer_over_http(gw):
    http, base, svc, admin, supervisor = gw
    url = f"{base}/api/customers/erase"
    first = await svc.chats.open_chat("demo", profile=Profile(email="ann@example.com"))
    second = await svc.chats.open_chat("demo", profile=Profile(email="Ann@example.com"))
    other = await svc.chats.open_chat("demo", profile=Profile(email="bob@example.com"))

    for bad in ({}, {"email": "ann@example.com", "sub": "x"}, {"phone": "1"}, {"sub": " "}):
        async with http.post(url, headers=bearer(admin), json=bad) as r:
            assert r.status == 400, bad
    async with http.post(url, headers=bearer(supervisor), json={"email": "a@b.c"}) as r:
        assert r.status == 403

    settings = {"approvals": {"mode": "reason", "ttl_minutes": 30}}
    async with http.put(f"{base}/api/governance/settings", headers=bearer(admin), json=settings):
        pass
    async with http.post(url, headers=bearer(admin), json={"chat_token": first.token}) as r:
        refused = await r.json()
    assert r.status == 403 and refused["error"]["code"] == "approval_required"
    target = refused["error"]["target"]
    assert target.startswith("chat_token:") and first.token not in target
    grant = {"action": "customer.erase", "target": target, "reason": "customer asked by e-mail"}
    async with http.post(f"{base}/api/approvals", headers=bearer(admin), json=grant) as r:
        assert r.status in (200, 201), await r.json()
    async with http.post(url, headers=bearer(admin), json={"chat_token": first.token}) as r:
        assert r.status == 200
        answer = await r.json()
    assert answer["erased"] == 2  # the token's chat and the other chat of the same e-mail
    report = verify_file(json.dumps(answer["report"]), svc.identity.verify_key_b64)
    assert sorted(report["chats"]) == sorted(chat_hash(c.chat.id) for c in (first, second))
    assert await svc.store.get_chat_key(other.chat.id) is not None
    async with http.get(f"{base}/api/reports", headers=bearer(admin)) as r:
        assert [x["report"]["id"] for x in (await r.json())["reports"]] == [report["id"]]


async def test_export_by_customer_over_http(gw):
    http, base, svc, admin, supervisor = gw
    url = f"{base}/api/customers/export"
    first = await svc.chats.open_chat("demo", profile=Profile(name="Ann", email="ann@example.com"))
    await svc.chats.post_customer_message("demo", first.chat.id, "m1", "my order 77", first.chat)
    await svc.chats.post_customer_message(
        "demo", first.chat.id, "m2", "call me on 13800138000", first.chat
    )
    await svc.chats.close(first.chat.id, "demo", by="customer")
    second = await svc.chats.open_chat("demo", profile=Profile(email="ANN@example.com"))
    await svc.chats.open_chat("demo", profile=Profile(email="bob@example.com"))

    async with http.post(url, headers=bearer(supervisor), json={"email": "ann@example.com"}) as r:
        assert r.status == 403
    async with http.post(url, headers=bearer(admin), json={"email": "ann@example.com"}) as r:
        assert r.status == 200 and r.headers["Cache-Control"] == "no-store"
        export = await r.json()
    assert export["truncated"] is False
    by_id = {c["id"]: c for c in export["chats"]}
    assert sorted(by_id) == sorted([first.chat.id, second.chat.id])
    chat = by_id[first.chat.id]
    assert (chat["state"], chat["close_reason"]) == ("closed", "customer_left")
    # Masked for the export audience (the tenant's default audience table), like what a
    # helpdesk plugin gets: the e-mail and the phone number are not returned in clear.
    assert chat["customer"]["verified"] is False
    assert chat["customer"]["email"] == "a**@example.com"
    assert [(m["from"], m["text"]) for m in chat["messages"]] == [
        ("customer", "my order 77"),
        ("customer", "call me on 138****8000"),
    ]
    assert "13800138000" not in json.dumps(export)
    [audit] = await svc.store.query_audit(action="customer.exported")
    assert (audit.details.get("chats"), audit.details.get("by")) == (2, "email")
    assert "ann" not in repr(audit)

    await svc.chats.erase_customer("demo", "email", "ann@example.com", actor="t")
    async with http.post(url, headers=bearer(admin), json={"chat_token": first.token}) as r:
        assert r.status == 200 and (await r.json())["chats"] == []  # erased: nothing left
