"""Chat history over real HTTP (issue 16 item 5): closed chats listed with filters and
CSAT, text search through keyed-hash tokens (the index table holds no plaintext), a
verified customer's previous chats, read-only transcripts with permissions, the approval
gate and one audit row per read, tenant isolation, and erasure emptying the index."""

from __future__ import annotations

import sqlite3
import uuid

import aiohttp
import pytest

from auth.identity import sign_identity
from auth.roles import Principal, Role
from gateway.search_index import tokenize
from gateway.store.base import HistoryQuery
from tests.gateway.helpers import FakeClock, bearer, login, make_agent, make_tenant, start_gateway
from tests.gateway.test_chat_service import _agent

SECRET = "shop-identity-secret-" + "k" * 24


@pytest.fixture
async def gw(tmp_path):
    clock = FakeClock()
    runner, base, svc = await start_gateway(tmp_path, clock=clock)
    async with aiohttp.ClientSession() as http:
        yield http, base, svc, clock, tmp_path
    await runner.cleanup()


async def _token(http, base, svc, clock, email, role, tenant="demo"):
    agent, secret, pw = await make_agent(svc, email, role=role, tenant=tenant)
    return agent, await login(http, base, email, pw, secret, clock.now)


async def _get(http, url, token):
    async with http.get(url, headers=bearer(token)) as r:
        return r.status, await r.json()


def _principal(agent) -> Principal:
    return Principal(agent_id=agent.id, tenant_id=agent.tenant_id, role=Role(agent.role))


async def _chat(svc, clock, agent, lines, *, csat=None, sub=None, tenant="demo"):
    """A chat handled by ``agent``, with customer ``lines``, closed by the customer."""
    token = None
    if sub is not None:
        claims = {"sub": sub, "exp": int(clock.now) + 60, "nonce": uuid.uuid4().hex}
        token = sign_identity(SECRET, claims)
    opened = await svc.chats.open_chat(tenant, identity_token=token)
    chat = await svc.chats.accept(_principal(agent), opened.chat.id)
    for i, line in enumerate(lines):
        await svc.chats.post_customer_message(tenant, chat.id, f"m{i}", line, chat)
    clock.advance(60)
    await svc.chats.close(chat.id, tenant, by="customer", csat=csat)
    # the node's indexer adds a closed chat's words (gateway/search_indexer.py); run it
    # here rather than waiting for its interval
    await svc.chats.search_indexer.run_once()
    return chat.id


async def _identity_on(http, base, admin_t):
    async with http.patch(
        f"{base}/api/tenant",
        json={"identity_mode": "optional", "identity_secrets": [SECRET]},
        headers=bearer(admin_t),
    ) as r:
        assert r.status == 200, await r.text()


async def test_history_list_search_transcript_and_csat(gw):
    http, base, svc, clock, tmp_path = gw
    admin, admin_t = await _token(http, base, svc, clock, "boss@example.com", "admin")
    sup, sup_t = await _token(http, base, svc, clock, "sue@example.com", "supervisor")
    al, al_t = await _token(http, base, svc, clock, "al@example.com", "agent")
    bo, _ = await _token(http, base, svc, clock, "bo@example.com", "agent")
    await _identity_on(http, base, admin_t)

    refund = await _chat(
        svc, clock, al, ["I want a REFUND for order zebra", "我要退款"], csat=5, sub="u-1"
    )
    clock.advance(120)
    later = await _chat(svc, clock, al, ["shipping question", "second line"], csat=3, sub="u-1")
    clock.advance(120)
    other = await _chat(svc, clock, bo, ["refund again please"], csat=1)
    url = f"{base}/api/history/chats"

    # an agent sees only their own closed chats, newest first, and only their own CSAT
    status, body = await _get(http, url, al_t)
    assert status == 200
    assert [c["id"] for c in body["chats"]] == [later, refund]
    assert [c["csat"] for c in body["chats"]] == [3, 5]
    assert body["csat"] == [
        {"agent": al.id, "agent_name": al.display_name, "rated": 2, "average": 4.0}
    ]
    assert (await _get(http, f"{url}?agent={bo.id}", al_t))[0] == 403

    # a supervisor sees the tenant; filters combine; CSAT averages per agent
    status, body = await _get(http, url, sup_t)
    assert [c["id"] for c in body["chats"]] == [other, later, refund]
    assert {r["agent"]: r["average"] for r in body["csat"]} == {al.id: 4.0, bo.id: 1.0}
    status, body = await _get(http, f"{url}?csat=1", sup_t)
    assert [c["id"] for c in body["chats"]] == [other]
    status, body = await _get(http, f"{url}?limit=1", sup_t)
    assert [c["id"] for c in body["chats"]] == [other] and body["next"]
    status, body = await _get(http, f"{url}?limit=1&before={body['next']}", sup_t)
    assert [c["id"] for c in body["chats"]] == [later]
    chat_row = await svc.store.get_chat(later)
    status, body = await _get(http, f"{url}?closed_to={chat_row.closed_at}", sup_t)
    assert [c["id"] for c in body["chats"]] == [refund]
    for bad in ("csat=9", "closed_from=x", "limit=0", "before=zz", "q=%20!%20"):
        status, body = await _get(http, f"{url}?{bad}", sup_t)
        assert status == 400 and body["error"]["code"] == "bad_request", bad

    # text search: every word must match, case-insensitive, Chinese by bigrams
    status, body = await _get(http, f"{url}?q=refund", sup_t)
    assert {c["id"] for c in body["chats"]} == {refund, other}
    status, body = await _get(http, f"{url}?q=Refund%20zebra", sup_t)
    assert [c["id"] for c in body["chats"]] == [refund]
    status, body = await _get(http, f"{url}?q=退款", al_t)
    assert [c["id"] for c in body["chats"]] == [refund]
    status, body = await _get(http, f"{url}?q=refund", al_t)  # still only own chats
    assert [c["id"] for c in body["chats"]] == [refund]

    # the same verified customer's previous chats
    status, body = await _get(http, f"{url}?customer_of={later}", al_t)
    assert [c["id"] for c in body["chats"]] == [refund]
    status, body = await _get(http, f"{url}?customer_of={other}", sup_t)  # not verified
    assert body["chats"] == []

    # transcripts: own chat readable, others' need transcript_read; one audit row each
    status, body = await _get(http, f"{url}/{refund}", al_t)
    assert status == 200 and body["chat"]["csat"] == 5
    assert [m["text"] for m in body["messages"]] == ["I want a REFUND for order zebra", "我要退款"]
    status, body = await _get(http, f"{url}/{other}", al_t)
    assert status == 403 and body["error"]["code"] == "forbidden"
    status, body = await _get(http, f"{url}/{other}", sup_t)
    assert status == 200 and [m["text"] for m in body["messages"]] == ["refund again please"]
    opened = await svc.store.query_audit(tenant_id="demo", action="transcript.opened")
    assert sorted((e.actor, e.target) for e in opened) == sorted([(al.id, refund), (sup.id, other)])
    searched = await svc.store.query_audit(tenant_id="demo", action="history.searched")
    assert len(searched) == 4
    assert all("refund" not in repr(e).lower() for e in searched)

    # the approval gate applies to another agent's transcript
    async with http.put(
        f"{base}/api/governance/settings",
        json={"approvals": {"mode": "two_person", "ttl_minutes": 10}},
        headers=bearer(admin_t),
    ) as r:
        assert r.status == 200
    status, body = await _get(http, f"{url}/{other}", sup_t)
    assert status == 403 and body["error"]["code"] == "approval_required"
    assert (await _get(http, f"{url}/{refund}", al_t))[0] == 200  # own chat: no gate

    # the index holds no plaintext: scan the whole database file for every token
    db = tmp_path / "data" / "cipherdesk.db"
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT tenant_id, chat_id, token_hash FROM chat_search_tokens")
        stored = [r[2] for r in rows]
        customers = [r[0] for r in conn.execute("SELECT key FROM customer_keys")]
    finally:
        conn.close()
    assert len(stored) > 5 and all(len(h) == 64 for h in stored)
    assert customers and "u-1" not in "".join(customers)
    for token in tokenize("refund zebra 我要退款 shipping question"):
        assert token not in "\n".join(stored)
    raw = b"".join(p.read_bytes() for p in db.parent.glob("cipherdesk.db*"))
    for word in ("zebra", "shipping", "退款"):
        assert word.encode() not in raw

    # erasing a chat deletes its index rows: search no longer finds it
    await svc.chats.erase(refund, actor=admin.id, tenant_id="demo")
    status, body = await _get(http, f"{url}?q=zebra", sup_t)
    assert body["chats"] == []
    conn = sqlite3.connect(db)
    try:
        left = conn.execute(
            "SELECT COUNT(*) FROM chat_search_tokens WHERE chat_id = ?", (refund,)
        ).fetchone()[0]
        left_c = conn.execute(
            "SELECT COUNT(*) FROM customer_keys WHERE chat_id = ?", (refund,)
        ).fetchone()[0]
    finally:
        conn.close()
    assert (left, left_c) == (0, 0)


async def test_history_is_tenant_isolated(gw):
    http, base, svc, clock, _ = gw
    await make_tenant(svc, "acme")
    al, _ = await _token(http, base, svc, clock, "al@example.com", "agent")
    _, sup_acme = await _token(http, base, svc, clock, "sue@acme.test", "supervisor", "acme")
    mine = await _chat(svc, clock, al, ["secret walrus plan"], csat=4)
    url = f"{base}/api/history/chats"
    status, body = await _get(http, url, sup_acme)
    assert status == 200 and body["chats"] == [] and body["csat"] == []
    status, body = await _get(http, f"{url}?q=walrus", sup_acme)
    assert body["chats"] == []
    status, body = await _get(http, f"{url}/{mine}", sup_acme)
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = await _get(http, f"{url}?customer_of={mine}", sup_acme)
    assert body["chats"] == []


async def test_history_store_on_both_engines(svc, clock):
    """The history SQL (written once, rendered per engine): search, filters, CSAT, erase."""
    p = await _agent(svc, "agent")
    agent = await svc.store.get_agent(p.agent_id)
    first = await _chat(svc, clock, agent, ["Alpha beta", "退款"], csat=4)
    second = await _chat(svc, clock, agent, ["alpha gamma"], csat=2)
    hashes = svc.chats.search.query("demo", "ALPHA")

    def query(**kw):
        return HistoryQuery(tenant_id="demo", **kw)

    found = await svc.store.list_history(query(token_hashes=hashes))
    assert [c.id for c in found] == [second, first]
    both = svc.chats.search.query("demo", "alpha beta")
    assert [c.id for c in await svc.store.list_history(query(token_hashes=both))] == [first]
    assert (
        await svc.store.list_history(query(token_hashes=svc.chats.search.query("x", "alpha"))) == []
    )
    [row] = await svc.store.csat_by_agent(query(agent_id=p.agent_id))
    assert (row.rated, row.average) == (2, 3.0)
    assert [c.id for c in await svc.store.list_history(query(csat=2))] == [second]
    assert await svc.store.erase_chat(first)
    assert await svc.store.list_history(query(token_hashes=both)) == []
