"""Approvals for sensitive access over real HTTP: reason required, a second person
approves (never the requester), grants expire (injected clock), denials stick, and
everything is audited; with approvals off nothing changes."""

from __future__ import annotations

import aiohttp
import pytest

from crypto.envelope import new_data_key
from gateway.store.base import Chat, PolicyFlag
from gateway.transcripts import seal_json
from tests.gateway.helpers import FakeClock, bearer, login, make_agent, start_gateway


@pytest.fixture
async def gw(tmp_path):
    clock = FakeClock()
    runner, base, svc = await start_gateway(tmp_path, clock=clock)
    async with aiohttp.ClientSession() as http:
        yield http, base, svc, clock
    await runner.cleanup()


async def _token(http, base, svc, clock, email, role):
    agent, secret, pw = await make_agent(svc, email, role=role)
    return agent, await login(http, base, email, pw, secret, clock.now)


async def _flag(svc, clock):
    key = new_data_key()
    chat = Chat(id="chat-1", tenant_id="demo", state="closed", created_at=clock.now)
    await svc.store.create_chat(chat, svc.keyring.wrap(key))
    flag_id = await svc.store.add_flag(
        PolicyFlag(
            chat_id=chat.id,
            tenant_id="demo",
            seq=1,
            kinds=["fraud"],
            original_sealed=seal_json(key, chat.id, "flag:1", {"text": "wire the money now"}),
            created_at=clock.now,
        )
    )
    return chat, flag_id


async def _call(http, method, url, token, body=None):
    async with http.request(method, url, headers=bearer(token), json=body) as r:
        return r.status, await r.json()


async def _set_mode(http, base, admin, mode, ttl=30):
    status, _ = await _call(
        http,
        "PUT",
        f"{base}/api/governance/settings",
        admin,
        {"approvals": {"mode": mode, "ttl_minutes": ttl}},
    )
    assert status == 200


async def test_two_person_approval_for_a_flagged_original(gw):
    http, base, svc, clock = gw
    admin, admin_t = await _token(http, base, svc, clock, "boss@example.com", "admin")
    sup, sup_t = await _token(http, base, svc, clock, "sue@example.com", "supervisor")
    _, agent_t = await _token(http, base, svc, clock, "al@example.com", "agent")
    _, flag_id = await _flag(svc, clock)
    url = f"{base}/api/flags/{flag_id}/original"
    assert (await _call(http, "GET", url, sup_t))[0] == 200  # approvals off: as before
    await _set_mode(http, base, admin_t, "two_person", ttl=10)

    status, body = await _call(http, "GET", url, sup_t)
    assert status == 403 and body["error"]["code"] == "approval_required"
    assert body["error"]["mode"] == "two_person"
    req = f"{base}/api/approvals"
    status, body = await _call(
        http,
        "POST",
        req,
        sup_t,
        {"action": "flag.view_original", "target": str(flag_id), "reason": "short"},
    )
    assert status == 400 and body["error"]["code"] == "invalid_request"
    status, body = await _call(
        http,
        "POST",
        req,
        sup_t,
        {
            "action": "flag.view_original",
            "target": str(flag_id),
            "reason": "customer complaint 4471, checking the agent's claim",
        },
    )
    assert status == 202 and body["grant"]["state"] == "pending"
    grant_id = body["grant"]["id"]
    assert (await _call(http, "GET", url, sup_t))[0] == 403  # still pending

    status, body = await _call(http, "POST", f"{req}/{grant_id}/approve", sup_t)
    assert status == 403 and body["error"]["code"] == "self_approval"
    status, body = await _call(http, "POST", f"{req}/{grant_id}/approve", agent_t)
    assert status == 403 and body["error"]["code"] == "forbidden"
    status, body = await _call(http, "GET", f"{req}?state=pending", admin_t)
    assert [g["id"] for g in body["grants"]] == [grant_id]
    status, body = await _call(http, "POST", f"{req}/{grant_id}/approve", admin_t)
    assert status == 200 and body["grant"]["approver"] == admin.id
    status, body = await _call(http, "POST", f"{req}/{grant_id}/deny", admin_t)
    assert status == 409 and body["error"]["code"] == "not_pending"

    status, body = await _call(http, "GET", url, sup_t)
    assert status == 200 and body["original"] == "wire the money now"
    status, body = await _call(http, "GET", url, admin_t)  # a grant is personal
    assert status == 403
    clock.advance(9 * 60)
    assert (await _call(http, "GET", url, sup_t))[0] == 200  # reusable until it expires
    clock.advance(60 + 1)
    status, body = await _call(http, "GET", url, sup_t)
    assert status == 403 and body["error"]["code"] == "approval_required"  # expired

    [requested] = await svc.store.query_audit(action="approval.requested")
    assert requested.actor == sup.id and "checking the agent" in requested.details["reason"]
    [approved] = await svc.store.query_audit(action="approval.approved")
    assert approved.actor == admin.id and approved.details["requester"] == sup.id


async def test_denied_request_keeps_access_closed(gw):
    http, base, svc, clock = gw
    _, admin_t = await _token(http, base, svc, clock, "boss@example.com", "admin")
    _, sup_t = await _token(http, base, svc, clock, "sue@example.com", "supervisor")
    _, flag_id = await _flag(svc, clock)
    await _set_mode(http, base, admin_t, "two_person")
    status, body = await _call(
        http,
        "POST",
        f"{base}/api/approvals",
        sup_t,
        {
            "action": "flag.view_original",
            "target": str(flag_id),
            "reason": "just curious about this one",
        },
    )
    status, body = await _call(
        http, "POST", f"{base}/api/approvals/{body['grant']['id']}/deny", admin_t
    )
    assert status == 200 and body["grant"]["state"] == "denied"
    assert (await _call(http, "GET", f"{base}/api/flags/{flag_id}/original", sup_t))[0] == 403
    assert await svc.store.query_audit(action="approval.denied")


async def test_reason_mode_for_erasure(gw):
    http, base, svc, clock = gw
    _, admin_t = await _token(http, base, svc, clock, "boss@example.com", "admin")
    chat, _ = await _flag(svc, clock)
    await _set_mode(http, base, admin_t, "reason", ttl=5)
    erase = f"{base}/api/chats/{chat.id}/erase"
    status, body = await _call(http, "POST", erase, admin_t)
    assert status == 403 and body["error"]["code"] == "approval_required"
    status, body = await _call(
        http,
        "POST",
        f"{base}/api/approvals",
        admin_t,
        {"action": "chat.erase", "target": chat.id, "reason": "customer asked for erasure"},
    )
    assert status == 201 and body["grant"]["state"] == "approved"
    assert body["grant"]["expires_at"] == clock.now + 300
    status, body = await _call(http, "POST", erase, admin_t)
    assert status == 200 and body["erased"] is True
    status, body = await _call(
        http,
        "PUT",
        f"{base}/api/governance/settings",
        admin_t,
        {"approvals": {"mode": "sometimes"}},
    )
    assert status == 400 and body["error"]["field"] == "approvals"


async def test_watching_another_agents_chat_needs_an_approved_request(gw):
    from gateway.sdk.client import AgentClient, ServerError

    http, base, svc, clock = gw
    _, admin_t = await _token(http, base, svc, clock, "boss@example.com", "admin")
    _, sup_t = await _token(http, base, svc, clock, "sue@example.com", "supervisor")
    chat_id = (await svc.chats.open_chat("demo")).chat.id
    await _set_mode(http, base, admin_t, "two_person")
    async with AgentClient(base, token=sup_t) as sup:
        with pytest.raises(ServerError) as refused:
            await sup.watch(chat_id)
        assert refused.value.code == "approval_required"
        status, body = await _call(
            http,
            "POST",
            f"{base}/api/approvals",
            sup_t,
            {
                "action": "transcript.read",
                "target": chat_id,
                "reason": "quality review requested by the customer",
            },
        )
        assert status == 202
        status, _ = await _call(
            http, "POST", f"{base}/api/approvals/{body['grant']['id']}/approve", admin_t
        )
        assert status == 200
        await sup.watch(chat_id)  # now allowed (and audited)
    opened = await svc.store.query_audit(action="transcript.opened")
    assert [e.target for e in opened] == [chat_id]


async def test_granting_a_plugin_customer_identities_needs_approval(gw):
    http, base, svc, clock = gw
    _, admin_t = await _token(http, base, svc, clock, "boss@example.com", "admin")
    _, other_t = await _token(http, base, svc, clock, "ops@example.com", "admin")
    await _set_mode(http, base, admin_t, "two_person")
    url = f"{base}/api/plugins/webhook"
    plain = {"url": "https://hooks.example.test/cd", "secret": "s" * 32}
    with_identity = {**plain, "include_identity": True}

    # no identities: configured without any approval
    status, body = await _call(http, "PUT", url, admin_t, {"enabled": True, "config": plain})
    assert status == 200, body
    # identities: refused until a second person approves
    status, body = await _call(
        http, "PUT", url, admin_t, {"enabled": True, "config": with_identity}
    )
    assert status == 403 and body["error"]["code"] == "approval_required"
    stored = await svc.store.get_plugin_config("demo", "webhook")
    assert stored is not None and stored.config["include_identity"] is False  # nothing stored
    status, body = await _call(
        http,
        "POST",
        f"{base}/api/approvals",
        admin_t,
        {
            "action": "plugin.identity",
            "target": "webhook",
            "reason": "the helpdesk needs the customer's account id for refunds",
        },
    )
    assert status == 202, body
    grant = body["grant"]["id"]
    status, _ = await _call(http, "POST", f"{base}/api/approvals/{grant}/approve", other_t)
    assert status == 200
    status, body = await _call(
        http, "PUT", url, admin_t, {"enabled": True, "config": with_identity}
    )
    assert status == 200, body
    # keeping identities on (another setting changed) is not a new grant
    changed = {**with_identity, "timeout": 5}
    status, body = await _call(http, "PUT", url, admin_t, {"enabled": True, "config": changed})
    assert status == 200, body

    # Zendesk always holds customer.identity: the same gate, and a grant is per plugin
    zendesk = {
        "subdomain": "acme",
        "email": "bot@acme.example",
        "api_token": "z" * 40,
    }
    status, body = await _call(
        http, "PUT", f"{base}/api/plugins/zendesk", admin_t, {"enabled": True, "config": zendesk}
    )
    assert status == 403 and body["error"]["code"] == "approval_required", body
    audit = await svc.store.query_audit(action="approval.requested", limit=5)
    assert audit and audit[0].details["access"] == "plugin.identity"
