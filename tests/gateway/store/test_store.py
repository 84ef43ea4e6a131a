"""The Store contract, run against both engines (see conftest: ``store`` is parametrised)."""

from __future__ import annotations

import asyncio
import os
import sqlite3

import asyncpg
import pytest

from gateway.store import (
    AgentSession,
    AuditEvent,
    Conflict,
    LockoutRecord,
    NotFound,
    PluginConfig,
    PolicyFlag,
    Store,
    StoreError,
)
from gateway.store.base import ChatClosed, HistoryQuery, NewMessage, NotAssigned
from gateway.store.migrate import latest_version
from tests.gateway.store.helpers import agent, chat, event, msg, setup_chat, tenant

# -- lifecycle / migrations ------------------------------------------------------------


async def test_schema_version_is_latest(store: Store) -> None:
    assert await store.schema_version() == latest_version("sqlite") == latest_version("postgres")
    assert await store.schema_version() >= 1


async def test_reopen_is_idempotent(store: Store, second_store: Store, raw) -> None:
    # second_store opened on the same database: migrations ran twice, applied once.
    await store.create_tenant(tenant())
    await second_store.close()
    await second_store.open()
    assert await second_store.schema_version() == await store.schema_version()
    rows = await raw.fetch("SELECT version FROM schema_version ORDER BY version")
    assert [r[0] for r in rows] == list(range(1, latest_version("sqlite") + 1))
    assert (await second_store.get_tenant("t1")) is not None


async def test_open_close_twice_is_harmless(store: Store) -> None:
    await store.open()
    await store.close()
    await store.close()
    await store.open()
    assert await store.schema_version() >= 1


# -- tenants ---------------------------------------------------------------------------


async def test_tenant_crud(store: Store) -> None:
    t = tenant(
        allowed_origins=["https://shop.example", "https://www.shop.example"],
        identity_mode="optional",
        identity_secrets_sealed=b"\x00\x01secret",
        settings={"limits": {"msg_per_min": 30}, "links": ["a.example"], "名字": "值"},
        frozen=False,
        created_at=5.5,
    )
    await store.create_tenant(t)
    await store.create_tenant(tenant("t0", created_at=1.0))
    got = await store.get_tenant("t1")
    assert got == t
    assert isinstance(got.identity_secrets_sealed, bytes)
    assert [x.id for x in await store.list_tenants()] == ["t0", "t1"]
    assert await store.get_tenant("nope") is None

    t.name = "Renamed"
    t.frozen = True
    t.settings = {"x": [1, 2.5, None, True]}
    t.allowed_origins = []
    t.identity_secrets_sealed = None
    await store.update_tenant(t)
    got = await store.get_tenant("t1")
    assert got == t
    assert got.frozen is True


async def test_tenant_conflict_and_not_found(store: Store) -> None:
    await store.create_tenant(tenant())
    with pytest.raises(Conflict):
        await store.create_tenant(tenant(name="again"))
    with pytest.raises(NotFound):
        await store.update_tenant(tenant("ghost"))


# -- agents ----------------------------------------------------------------------------


async def test_agent_crud_and_email_lookup(store: Store) -> None:
    await store.create_tenant(tenant("t1"))
    await store.create_tenant(tenant("t2"))
    a = agent(
        "a1",
        totp_secret_sealed=b"sealed-totp",
        totp_confirmed=True,
        role="admin",
        password_changed_at=9.0,
    )
    await store.create_agent(a)
    await store.create_agent(agent("a2", created_at=11.0))
    await store.create_agent(agent("b1", "t2", created_at=12.0))
    assert await store.get_agent("a1") == a
    assert await store.get_agent_by_email("a1@example.com") == a
    assert await store.get_agent_by_email("A1@example.com") is None  # caller normalises
    assert await store.get_agent("zz") is None
    assert [x.id for x in await store.list_agents("t1")] == ["a1", "a2"]
    assert [x.id for x in await store.list_agents()] == ["a1", "a2", "b1"]

    a.email = "new@example.com"
    a.display_name = "Ann"
    a.disabled = True
    a.totp_confirmed = False
    a.totp_secret_sealed = None
    a.password_hash = "$argon2id$new"
    await store.update_agent(a)
    assert await store.get_agent("a1") == a
    assert await store.get_agent_by_email("a1@example.com") is None
    assert (await store.get_agent_by_email("new@example.com")).id == "a1"


async def test_agent_conflicts(store: Store) -> None:
    await store.create_tenant(tenant())
    await store.create_agent(agent("a1"))
    await store.create_agent(agent("a2"))
    with pytest.raises(Conflict):
        await store.create_agent(agent("a3", email="a1@example.com"))
    with pytest.raises(Conflict):
        await store.create_agent(agent("a1", email="other@example.com"))
    a2 = await store.get_agent("a2")
    a2.email = "a1@example.com"
    with pytest.raises(Conflict):
        await store.update_agent(a2)
    with pytest.raises(NotFound):
        await store.update_agent(agent("ghost", email="ghost@example.com"))
    with pytest.raises(NotFound):  # the tenant must exist
        await store.create_agent(agent("x", "no-such-tenant"))


async def test_advance_totp_step(store: Store) -> None:
    await store.create_tenant(tenant())
    await store.create_agent(agent())
    assert await store.advance_totp_step("a1", 100) is True
    assert await store.advance_totp_step("a1", 100) is False
    assert await store.advance_totp_step("a1", 99) is False
    assert await store.advance_totp_step("a1", 101) is True
    assert await store.advance_totp_step("ghost", 5) is False
    assert (await store.get_agent("a1")).totp_last_step == 101

    # update_agent with a stale copy never lowers the replay counter
    stale = agent()
    stale.totp_last_step = 3
    await store.update_agent(stale)
    assert (await store.get_agent("a1")).totp_last_step == 101


async def test_advance_totp_step_race(store: Store, second_store: Store) -> None:
    await store.create_tenant(tenant())
    await store.create_agent(agent())
    for step in (1000, 1001, 1002):
        results = await asyncio.gather(
            *(s.advance_totp_step("a1", step) for s in [store, second_store] * 10)
        )
        assert results.count(True) == 1, results


async def test_recovery_codes_single_use(store: Store) -> None:
    await store.create_tenant(tenant())
    await store.create_agent(agent())
    await store.set_recovery_codes("a1", ["h1", "h2", "h3", "h3"])
    assert await store.count_recovery_codes("a1") == 3
    assert await store.use_recovery_code("a1", "h1", 10.0) is True
    assert await store.use_recovery_code("a1", "h1", 11.0) is False
    assert await store.use_recovery_code("a1", "unknown", 11.0) is False
    assert await store.use_recovery_code("other", "h2", 11.0) is False
    assert await store.count_recovery_codes("a1") == 2
    results = await asyncio.gather(*(store.use_recovery_code("a1", "h2", 12.0) for _ in range(8)))
    assert results.count(True) == 1
    assert await store.count_recovery_codes("a1") == 1
    await store.set_recovery_codes("a1", ["n1", "n2"])  # replaces, all unused
    assert await store.count_recovery_codes("a1") == 2
    assert await store.use_recovery_code("a1", "h3", 13.0) is False
    await store.set_recovery_codes("a1", [])
    assert await store.count_recovery_codes("a1") == 0
    assert await store.count_recovery_codes("ghost") == 0
    with pytest.raises(NotFound):
        await store.set_recovery_codes("ghost", ["x"])


# -- sessions --------------------------------------------------------------------------


async def test_sessions(store: Store) -> None:
    await store.create_tenant(tenant())
    await store.create_agent(agent("a1"))
    await store.create_agent(agent("a2"))
    s1 = AgentSession(
        "h1", "a1", "t1", created_at=100.0, last_seen_at=100.0, ip="10.0.0.1", user_agent="Firefox"
    )
    s2 = AgentSession("h2", "a1", "t1", created_at=200.0, last_seen_at=200.0)
    s3 = AgentSession("h3", "a1", "t1", created_at=300.0, last_seen_at=300.0)
    other = AgentSession("o1", "a2", "t1", created_at=150.0, last_seen_at=150.0)
    for s in (s1, s2, s3, other):
        await store.create_session(s)
    with pytest.raises(Conflict):
        await store.create_session(s1)
    with pytest.raises(NotFound):
        await store.create_session(AgentSession("hx", "ghost", "t1", 1.0, 1.0))
    assert await store.get_session("h1") == s1
    assert await store.get_session("nope") is None

    await store.touch_session("h1", 150.0)
    assert (await store.get_session("h1")).last_seen_at == 150.0
    await store.touch_session("h1", 120.0)  # never goes back
    assert (await store.get_session("h1")).last_seen_at == 150.0

    assert await store.revoke_session("h2", 400.0) is True
    assert await store.revoke_session("h2", 401.0) is False
    assert await store.revoke_session("nope", 401.0) is False
    assert (await store.get_session("h2")).revoked_at == 400.0
    await store.touch_session("h2", 500.0)  # revoked sessions are not touched
    assert (await store.get_session("h2")).last_seen_at == 200.0

    assert [s.token_hash for s in await store.list_sessions("a1")] == ["h3", "h2", "h1"]
    assert await store.revoke_agent_sessions("a1", 600.0) == ["h1", "h3"]
    assert await store.revoke_agent_sessions("a1", 700.0) == []
    assert all(s.revoked_at is not None for s in await store.list_sessions("a1"))
    assert (await store.get_session("h2")).revoked_at == 400.0
    assert (await store.get_session("o1")).revoked_at is None


# -- lockout ---------------------------------------------------------------------------


async def test_lockout(store: Store) -> None:
    assert await store.get_lockout("acct:a@example.com") is None
    rec = LockoutRecord("acct:a@example.com", failures=1.0, last_failure_at=10.0)
    await store.put_lockout(rec)
    assert await store.get_lockout("acct:a@example.com") == rec
    rec = LockoutRecord("acct:a@example.com", failures=5, last_failure_at=20.0, locked_until=80.0)
    await store.put_lockout(rec)
    await store.put_lockout(LockoutRecord("ip:10.0.0.1", failures=2))
    assert await store.get_lockout("acct:a@example.com") == rec
    await store.clear_lockout("acct:a@example.com")
    await store.clear_lockout("never-existed")
    assert await store.get_lockout("acct:a@example.com") is None
    assert (await store.get_lockout("ip:10.0.0.1")).failures == 2


# -- audit -----------------------------------------------------------------------------


async def test_audit_append_and_query(store: Store) -> None:
    ids = []
    for i in range(10):
        ids.append(
            await store.append_audit(
                AuditEvent(
                    ts=1000.0 + i,
                    action="login" if i % 2 == 0 else "chat.open",
                    tenant_id="t1" if i < 7 else "t2",
                    actor=f"a{i % 3}",
                    target=f"x{i}",
                    ip="10.0.0.1",
                    details={"i": i, "nested": {"ok": True}},
                )
            )
        )
    assert ids == sorted(ids) and len(set(ids)) == 10

    everything = await store.query_audit()
    assert [e.id for e in everything] == ids[::-1]
    first = everything[-1]
    assert first == AuditEvent(
        ts=1000.0,
        action="login",
        tenant_id="t1",
        actor="a0",
        target="x0",
        ip="10.0.0.1",
        details={"i": 0, "nested": {"ok": True}},
        id=ids[0],
    )

    assert {e.action for e in await store.query_audit(action="login")} == {"login"}
    assert len(await store.query_audit(action="login")) == 5
    assert [e.target for e in await store.query_audit(tenant_id="t2")] == ["x9", "x8", "x7"]
    assert [e.target for e in await store.query_audit(actor="a1")] == ["x7", "x4", "x1"]
    assert [e.target for e in await store.query_audit(since=1003.0, until=1006.0)] == [
        "x5",
        "x4",
        "x3",
    ]
    assert [
        e.target for e in await store.query_audit(tenant_id="t1", action="chat.open", actor="a0")
    ] == ["x3"]
    assert await store.query_audit(action="nothing") == []

    # paging: newest first, before_id = last id of the previous page
    pages, before = [], None
    while True:
        page = await store.query_audit(limit=4, before_id=before)
        if not page:
            break
        pages.append([e.id for e in page])
        before = page[-1].id
    assert pages == [ids[9:5:-1], ids[5:1:-1], ids[1::-1]]


async def test_audit_is_append_only_at_sql_level(store: Store, raw, backend: str) -> None:
    event_id = await store.append_audit(AuditEvent(ts=1.0, action="login", actor="a1"))
    # The trigger's own error: RAISE(ABORT) in SQLite, insufficient_privilege in PostgreSQL.
    refused = sqlite3.IntegrityError if backend == "sqlite" else asyncpg.InsufficientPrivilegeError
    with pytest.raises(refused, match="append-only"):
        await raw.execute(f"UPDATE audit_log SET action = 'tampered' WHERE id = {event_id}")
    with pytest.raises(refused, match="append-only"):
        await raw.execute(f"DELETE FROM audit_log WHERE id = {event_id}")
    with pytest.raises(refused, match="append-only"):
        await raw.execute("DELETE FROM audit_log")
    rows = await raw.fetch("SELECT action FROM audit_log")
    assert rows == [("login",)]


# -- chats -----------------------------------------------------------------------------


async def test_chat_create_get_key(store: Store) -> None:
    await store.create_tenant(tenant())
    c = chat(
        identity_sealed=b"\x01id",
        profile_sealed=b"\x02profile",
        verified=True,
        resume_token_hash="rth",
        queue="billing",
    )
    await store.create_chat(c, b"\x00wrapped\xff")
    assert await store.get_chat("c1") == c
    assert await store.get_chat_key("c1") == b"\x00wrapped\xff"
    assert await store.get_chat("nope") is None
    assert await store.get_chat_key("nope") is None
    with pytest.raises(Conflict):
        await store.create_chat(chat(), b"k2")
    assert await store.get_chat_key("c1") == b"\x00wrapped\xff"
    with pytest.raises(NotFound):
        await store.create_chat(chat("c9", "no-such-tenant"), b"k")
    assert await store.get_chat("c9") is None


async def test_list_chats_order_and_filters(store: Store) -> None:
    await store.create_tenant(tenant("t1"))
    await store.create_tenant(tenant("t2"))
    await store.create_chat(chat("c3", created_at=300.0), b"k")
    await store.create_chat(chat("c1", created_at=100.0), b"k")
    await store.create_chat(
        chat("c2", created_at=200.0, state="active", assigned_agent_id="a1"), b"k"
    )
    await store.create_chat(chat("c4", created_at=50.0, state="closed", closed_at=60.0), b"k")
    await store.create_chat(chat("x1", "t2", created_at=10.0), b"k")
    assert [c.id for c in await store.list_chats("t1")] == ["c1", "c2", "c3"]
    assert [c.id for c in await store.list_chats("t1", states=("queued",))] == ["c1", "c3"]
    assert [c.id for c in await store.list_chats("t1", states=("closed",))] == ["c4"]
    assert [c.id for c in await store.list_chats("t1", agent_id="a1")] == ["c2"]
    assert [c.id for c in await store.list_chats("t1", limit=2)] == ["c1", "c2"]
    assert [c.id for c in await store.list_chats("t2")] == ["x1"]
    assert await store.list_chats("t3") == []


async def test_update_chat(store: Store) -> None:
    await setup_chat(store)
    await store.append_message(msg("m1"))
    await store.append_message(msg("m2"))
    c = await store.get_chat("c1")
    assert c.last_seq == 2
    stale = chat()  # last_seq = 0 in the caller's copy
    stale.state = "closed"
    stale.assigned_agent_id = "a7"
    stale.accepted_at = 150.0
    stale.closed_at = 300.0
    stale.close_reason = "resolved"
    stale.csat = 5
    stale.verified = True
    stale.identity_sealed = b"id"
    stale.queue = "vip"
    await store.update_chat(stale)
    got = await store.get_chat("c1")
    assert got.last_seq == 2  # owned by append_message, never overwritten
    stale.last_seq = 2
    assert got == stale
    with pytest.raises(NotFound):
        await store.update_chat(chat("ghost"))


# -- messages --------------------------------------------------------------------------


async def test_append_assigns_seq_and_dedups(store: Store) -> None:
    await setup_chat(store)
    r1 = await store.append_message(msg("m1", policy={"action": "mask", "kinds": ["card"]}))
    r2 = await store.append_message(msg("m2", sender="agent", sender_agent_id="a1", ts=201.5))
    assert (r1.message.seq, r1.duplicate) == (1, False)
    assert (r2.message.seq, r2.duplicate) == (2, False)
    assert r1.message.policy == {"action": "mask", "kinds": ["card"]}

    again = await store.append_message(msg("m1", body_sealed=b"different", ts=999.0))
    assert again.duplicate is True
    assert again.message == r1.message  # the stored one, not the resend
    assert (await store.get_chat("c1")).last_seq == 2

    stored = await store.messages_after("c1", 0)
    assert stored == [r1.message, r2.message]
    assert stored[1].sender == "agent" and stored[1].sender_agent_id == "a1"
    assert await store.messages_after("c1", 1) == [r2.message]
    assert await store.messages_after("c1", 2) == []
    assert await store.messages_after("c1", 0, limit=1) == [r1.message]
    assert await store.messages_after("ghost", 0) == []


async def test_append_unknown_chat(store: Store) -> None:
    await store.create_tenant(tenant())
    with pytest.raises(NotFound):
        await store.append_message(msg("m1", chat_id="ghost"))


async def test_append_writes_outbox_in_same_transaction(store: Store) -> None:
    await setup_chat(store)
    r = await store.append_message(
        msg("m1"), [event("m1:webhook"), event("m1:zendesk", plugin="zendesk")]
    )
    items = await store.list_events()
    assert [(i.plugin, i.idempotency_key, i.chat_id, i.state) for i in items] == [
        ("webhook", "m1:webhook", "c1", "pending"),
        ("zendesk", "m1:zendesk", "c1", "pending"),
    ]
    assert items[0].payload_sealed == b"payload:m1:webhook"
    assert items[0].created_at == 50.0 and items[0].attempts == 0

    # a duplicate message writes nothing, its events included
    dup = await store.append_message(msg("m1"), [event("m1:other")])
    assert dup.duplicate and dup.message == r.message
    assert len(await store.list_events()) == 2

    # duplicate (plugin, idempotency_key) pairs are ignored, the message still lands
    r2 = await store.append_message(msg("m2"), [event("m1:webhook"), event("m2:webhook")])
    assert r2.message.seq == 2
    assert [i.idempotency_key for i in await store.list_events()] == [
        "m1:webhook",
        "m1:zendesk",
        "m2:webhook",
    ]


async def test_closed_chats_are_indexed_once_with_their_tenant(store: Store) -> None:
    await setup_chat(store, "c1")
    await setup_chat(store, "c2", tenant_id="t2")
    await setup_chat(store, "open")
    await store.close_chat("c2", closed_at=300.0, reason="done")
    await store.close_chat("c1", closed_at=200.0, reason="done")
    # closed and not yet indexed, earliest close first; an open chat waits for its close
    assert [c.id for c in await store.chats_to_index()] == ["c1", "c2"]
    assert [c.id for c in await store.chats_to_index(limit=1)] == ["c1"]

    assert await store.index_closed_chat("c1", ["h-parcel", "h-late", "h-late"])
    assert await store.index_closed_chat("c2", ["h-late"])
    assert not await store.index_closed_chat("open", ["h-open"])  # not closed: nothing
    assert [c.id for c in await store.chats_to_index()] == []
    assert await store.index_closed_chat("c1", ["h-parcel", "h-refund"])  # idempotent

    async def found(tenant: str, *hashes: str) -> list[str]:
        query = HistoryQuery(tenant_id=tenant, token_hashes=list(hashes))
        return [c.id for c in await store.list_history(query)]

    assert await found("t1", "h-parcel", "h-refund") == ["c1"]
    # each row carries its chat's tenant (read by the store, not given by the caller)
    assert await found("t1", "h-late") == ["c1"]
    assert await found("t2", "h-late") == ["c2"]
    assert await found("t1", "h-open") == []

    # an erased chat is never indexed again, and its rows went with it
    await setup_chat(store, "c3")
    await store.close_chat("c3", closed_at=400.0, reason="done")
    assert await store.erase_chat("c3")
    assert await store.chats_to_index() == []
    assert not await store.index_closed_chat("c3", ["h-ghost"])
    assert await found("t1", "h-ghost") == []
    assert await store.erase_chat("c1")
    assert await found("t1", "h-parcel") == []


async def test_failing_event_rolls_back_message(store: Store) -> None:
    await setup_chat(store)
    await store.append_message(msg("m1"))
    bad = event("m2:webhook", payload_sealed=None)  # violates NOT NULL
    with pytest.raises(StoreError):
        await store.append_message(msg("m2"), [event("m2:ok"), bad])
    assert (await store.get_chat("c1")).last_seq == 1
    assert [m.msg_id for m in await store.messages_after("c1", 0)] == ["m1"]
    assert await store.list_events() == []
    # an event for an unknown tenant is a foreign-key failure: NotFound, nothing written
    with pytest.raises(NotFound):
        await store.append_message(msg("m2"), [event("m2:x", tenant_id="ghost")])
    # and the next append gets the next seq, gap-free
    r = await store.append_message(msg("m2"), [event("m2:ok")])
    assert r.message.seq == 2 and not r.duplicate
    assert [i.idempotency_key for i in await store.list_events()] == ["m2:ok"]


async def test_concurrent_appends_are_gap_free(store: Store, second_store: Store) -> None:
    await setup_chat(store)
    await setup_chat(store, "c2")
    n = 60
    results = await asyncio.gather(
        *(
            (store if i % 2 else second_store).append_message(
                msg(f"m{i}", chat_id="c1" if i % 3 else "c2"), [event(f"e{i}", chat_id=None)]
            )
            for i in range(n)
        )
    )
    for cid in ("c1", "c2"):
        seqs = sorted(r.message.seq for r in results if r.message.chat_id == cid)
        assert seqs == list(range(1, len(seqs) + 1))
        assert (await store.get_chat(cid)).last_seq == len(seqs)
        assert [m.seq for m in await store.messages_after(cid, 0)] == seqs
    assert len(await store.list_events(limit=1000)) == n


async def test_concurrent_duplicate_appends(store: Store, second_store: Store) -> None:
    await setup_chat(store)
    results = await asyncio.gather(
        *((store, second_store)[i % 2].append_message(msg("same")) for i in range(10))
    )
    assert sum(not r.duplicate for r in results) == 1
    assert {r.message.seq for r in results} == {1}
    assert (await store.get_chat("c1")).last_seq == 1


async def test_appends_committed_together_fail_alone(store: Store) -> None:
    """Appends that arrive together share a transaction (group commit on both engines);
    each still gets its own outcome, and only a failing one is undone."""
    await setup_chat(store)
    await setup_chat(store, "shut", state="closed")
    first = await store.append_message(msg("m0"))

    def broken(_stored: object) -> list:
        raise RuntimeError("event builder failed")

    outcomes = await asyncio.gather(
        store.append_message(msg("m1"), [event("e1")]),
        store.append_message(msg("m0", body_sealed=b"resent")),  # a resend
        store.append_message(msg("s1", chat_id="shut")),
        store.append_message(msg("g1", chat_id="ghost")),
        store.append_message(msg("m2"), broken),
        store.append_message(msg("m3"), [event("e3")]),
        return_exceptions=True,
    )
    m1, resent, shut, ghost, failed, m3 = outcomes
    assert resent.duplicate and resent.message == first.message
    assert isinstance(shut, ChatClosed) and isinstance(ghost, NotFound)
    assert isinstance(failed, RuntimeError)
    assert (m1.message.seq, m3.message.seq) == (2, 3)  # the resend gave its seq back
    assert [m.msg_id for m in await store.messages_after("c1", 0)] == ["m0", "m1", "m3"]
    assert (await store.get_chat("c1")).last_seq == 3
    assert (await store.get_chat("shut")).last_seq == 0
    assert sorted(i.idempotency_key for i in await store.list_events()) == ["e1", "e3"]
    assert (await store.append_message(msg("m2"))).message.seq == 4  # gap-free after all


# -- erase -----------------------------------------------------------------------------


async def test_erase_chat(store: Store) -> None:
    await setup_chat(
        store,
        identity_sealed=b"who",
        profile_sealed=b"form",
        verified=True,
        resume_token_hash="rth",
        assigned_agent_id="a1",
        state="active",
    )
    await setup_chat(store, "keep")
    await store.append_message(msg("m1"), [event("e1")])
    await store.append_message(msg("m2"), [event("e2")])
    await store.append_message(msg("k1", chat_id="keep"), [event("k1", chat_id="keep")])
    await store.enqueue_events([event("free", chat_id=None)])
    await store.add_flag(PolicyFlag("c1", "t1", 1, ["card"], b"orig", 5.0))
    keep_flag = await store.add_flag(PolicyFlag("keep", "t1", 1, ["iban"], b"orig", 5.0))
    items = {i.idempotency_key: i for i in await store.list_events()}
    await store.mark_delivered(items["e1"].id, 60.0)

    assert await store.erase_chat("c1") is True

    assert await store.get_chat_key("c1") is None
    assert await store.messages_after("c1", 0) == []
    with pytest.raises(NotFound):
        await store.append_message(msg("m3"))
    with pytest.raises(NotFound):
        await store.append_message(msg("m1"))  # not even as a "duplicate"
    tomb = await store.get_chat("c1")
    assert tomb.state == "closed" and tomb.close_reason == "erased"
    assert tomb.identity_sealed is None and tomb.profile_sealed is None
    assert tomb.resume_token_hash == ""
    assert [f.chat_id for f in await store.list_flags("t1")] == ["keep"]
    # pending outbox rows of the chat are gone; the delivered one is history
    left = {i.idempotency_key: i.state for i in await store.list_events()}
    assert left == {"e1": "delivered", "k1": "pending", "free": "pending"}
    with pytest.raises(NotFound):
        await store.update_chat(chat("c1", state="active"))
    with pytest.raises(NotFound):
        await store.add_flag(PolicyFlag("c1", "t1", 2, ["card"], b"orig", 6.0))
    assert await store.chats_closed_before(1e12) == []

    # the other chat is untouched
    assert await store.get_chat_key("keep") == b"wrapped-key-keep"
    assert len(await store.messages_after("keep", 0)) == 1
    assert (await store.get_flag(keep_flag)) is not None

    assert await store.erase_chat("c1") is True  # idempotent
    assert await store.erase_chat("ghost") is False


async def test_chats_closed_before(store: Store) -> None:
    await store.create_tenant(tenant())
    await store.create_chat(chat("open"), b"k")
    await store.create_chat(chat("old", state="closed", closed_at=100.0), b"k")
    await store.create_chat(chat("older", state="closed", closed_at=50.0), b"k")
    await store.create_chat(chat("new", state="closed", closed_at=500.0), b"k")
    assert await store.chats_closed_before(200.0) == ["older", "old"]
    assert await store.chats_closed_before(200.0, limit=1) == ["older"]
    assert await store.chats_closed_before(50.0) == []
    await store.erase_chat("older")
    assert await store.chats_closed_before(1000.0) == ["old", "new"]


# -- flags -----------------------------------------------------------------------------


async def test_flags(store: Store) -> None:
    await setup_chat(store)
    await setup_chat(store, "x1", tenant_id="t2")
    f1 = await store.add_flag(PolicyFlag("c1", "t1", 1, ["card", "phone"], b"orig1", 10.0))
    f2 = await store.add_flag(PolicyFlag("c1", "t1", 2, ["secret"], b"orig2", 11.0))
    await store.add_flag(PolicyFlag("x1", "t2", 1, [], b"orig3", 12.0))
    assert f2 > f1
    got = await store.get_flag(f1)
    assert got == PolicyFlag("c1", "t1", 1, ["card", "phone"], b"orig1", 10.0, id=f1)
    assert await store.get_flag(99999) is None
    assert [f.id for f in await store.list_flags("t1")] == [f2, f1]  # newest first
    await store.mark_flag_reviewed(f1, "sup1")
    assert [f.id for f in await store.list_flags("t1")] == [f2]
    assert [(f.id, f.reviewed_by) for f in await store.list_flags("t1", unreviewed_only=False)] == [
        (f2, None),
        (f1, "sup1"),
    ]
    with pytest.raises(NotFound):
        await store.mark_flag_reviewed(99999, "sup1")
    with pytest.raises(NotFound):
        await store.add_flag(PolicyFlag("ghost", "t1", 1, [], b"o", 1.0))


async def test_flags_come_a_page_at_a_time_newest_first(store: Store) -> None:
    await setup_chat(store)
    ids = [
        await store.add_flag(PolicyFlag("c1", "t1", seq, ["card"], b"o", float(seq)))
        for seq in range(1, 8)
    ]
    await store.mark_flag_reviewed(ids[5], "sup1")
    pages, before = [], None
    while True:
        page = await store.list_flags("t1", before_id=before, limit=3)
        pages.append([f.id for f in page])
        if len(page) < 3:
            break
        before = page[-1].id
    unreviewed = [i for i in reversed(ids) if i != ids[5]]
    assert pages == [unreviewed[:3], unreviewed[3:6], []]
    every = await store.list_flags("t1", unreviewed_only=False, before_id=ids[6], limit=2)
    assert [f.id for f in every] == [ids[5], ids[4]]


# -- outbox ----------------------------------------------------------------------------


async def test_enqueue_and_list_events(store: Store) -> None:
    await setup_chat(store)
    await store.create_tenant(tenant("t2"))
    await store.enqueue_events([])
    await store.enqueue_events(
        [
            event("a", event_type="chat.opened"),
            event("b", chat_id=None, plugin="zendesk"),
            event("c", chat_id=None, tenant_id="t2"),
        ]
    )
    await store.enqueue_events([event("a"), event("d", plugin="zendesk")])  # "a" ignored
    items = await store.list_events()
    assert [i.idempotency_key for i in items] == ["a", "b", "c", "d"]
    assert items[0].event_type == "chat.opened"
    assert [i.idempotency_key for i in await store.list_events(tenant_id="t2")] == ["c"]
    assert [i.idempotency_key for i in await store.list_events(plugin="zendesk")] == ["b", "d"]
    assert [i.idempotency_key for i in await store.list_events(limit=2)] == ["a", "b"]
    await store.mark_delivered(items[1].id, 99.0)
    delivered = await store.list_events(state="delivered")
    assert [(i.idempotency_key, i.delivered_at) for i in delivered] == [("b", 99.0)]
    assert [
        i.idempotency_key for i in await store.list_events(plugin="zendesk", state="pending")
    ] == ["d"]
    with pytest.raises(NotFound):
        await store.enqueue_events([event("z", tenant_id="ghost")])
    with pytest.raises(NotFound):
        await store.enqueue_events([event("z", chat_id="ghost")])
    assert len(await store.list_events()) == 4  # nothing of the failed batches


async def test_claim_groups_and_order(store: Store) -> None:
    await setup_chat(store, "c1")
    await setup_chat(store, "c2")
    await store.enqueue_events(
        [
            event("c1-1", "c1"),  # head of (webhook, c1)
            event("c2-1", "c2"),  # head of (webhook, c2)
            event("c1-2", "c1"),  # behind c1-1
            event("z-c1-1", "c1", "zendesk"),  # other plugin: own group
            event("n1", None),  # chat-less: each its own group
            event("n2", None),
            event("c2-2", "c2"),
        ]
    )
    claimed = await store.claim_due_events(now=100.0)
    assert [i.idempotency_key for i in claimed] == ["c1-1", "c2-1", "z-c1-1", "n1", "n2"]
    assert [i.id for i in claimed] == sorted(i.id for i in claimed)
    assert all(i.state == "pending" and i.attempts == 0 for i in claimed)

    # limit takes the oldest heads
    await _release(store, claimed)
    assert [i.idempotency_key for i in await store.claim_due_events(100.0, limit=2)] == [
        "c1-1",
        "c2-1",
    ]


async def _release(store: Store, items) -> None:
    """Give up leases by rescheduling at once (attempts unchanged)."""
    for i in items:
        await store.reschedule_event(i.id, attempts=i.attempts, next_attempt_at=0.0, error="-")


async def test_claim_lease_and_lifecycle(store: Store) -> None:
    lease = store.lease_seconds
    await setup_chat(store)
    await store.enqueue_events([event("e1", created_at=10.0), event("e2", created_at=11.0)])
    assert await store.claim_due_events(now=5.0) == []  # not due before created_at
    first = await store.claim_due_events(now=20.0)
    assert [i.idempotency_key for i in first] == ["e1"]
    # leased: nobody gets it (nor the item behind it) until the lease ends
    assert await store.claim_due_events(now=21.0) == []
    assert [i.idempotency_key for i in await store.claim_due_events(now=20.0 + lease)] == ["e1"]

    # a failure backs off: the whole (plugin, chat) group waits, preserving order
    await store.reschedule_event(first[0].id, attempts=1, next_attempt_at=500.0, error="HTTP 503")
    assert await store.claim_due_events(now=400.0) == []
    again = await store.claim_due_events(now=500.0)
    assert [(i.idempotency_key, i.attempts, i.last_error, i.next_attempt_at) for i in again] == [
        ("e1", 1, "HTTP 503", 500.0)
    ]

    # dead-lettering the head lets the next one through
    await store.dead_letter(again[0].id, attempts=8, error="gave up")
    nxt = await store.claim_due_events(now=501.0)
    assert [i.idempotency_key for i in nxt] == ["e2"]
    await store.mark_delivered(nxt[0].id, 502.0)
    assert await store.claim_due_events(now=10_000.0) == []

    dead = await store.list_events(state="dead")
    assert [(i.idempotency_key, i.attempts, i.last_error) for i in dead] == [("e1", 8, "gave up")]
    assert await store.replay_dead(dead[0].id, 600.0) is True
    assert await store.replay_dead(dead[0].id, 600.0) is False  # no longer dead
    assert await store.replay_dead(nxt[0].id, 600.0) is False  # delivered, not dead
    assert await store.replay_dead(99999, 600.0) is False
    replayed = await store.claim_due_events(now=600.0)
    assert [(i.idempotency_key, i.attempts, i.state) for i in replayed] == [("e1", 0, "pending")]
    await store.mark_delivered(replayed[0].id, 601.0)
    assert {i.state for i in await store.list_events()} == {"delivered"}
    # terminal items are not reopened by a late reschedule/dead_letter
    await store.reschedule_event(replayed[0].id, attempts=1, next_attempt_at=0.0, error="late")
    await store.dead_letter(replayed[0].id, attempts=1, error="late")
    assert {i.state for i in await store.list_events()} == {"delivered"}
    # unknown ids are no-ops
    await store.mark_delivered(99999, 1.0)


async def test_claim_is_exclusive_across_nodes(store: Store, second_store: Store) -> None:
    await store.create_tenant(tenant())
    for n in range(5):
        await store.create_chat(chat(f"c{n}"), b"k")
    await store.enqueue_events(
        [event(f"c{n}-{k}", f"c{n}") for k in range(3) for n in range(5)]
        + [event(f"free-{k}", None) for k in range(20)]
    )
    batches = await asyncio.gather(
        *((store, second_store)[i % 2].claim_due_events(now=100.0, limit=7) for i in range(8))
    )
    keys = [i.idempotency_key for b in batches for i in b]
    assert len(keys) == len(set(keys)) == 25  # 5 chat heads + 20 chat-less, each once
    assert {k for k in keys if not k.startswith("free")} == {f"c{n}-0" for n in range(5)}


# -- plugin configs --------------------------------------------------------------------


async def test_plugin_configs(store: Store) -> None:
    await store.create_tenant(tenant("t1"))
    await store.create_tenant(tenant("t2"))
    cfg = PluginConfig(
        "t1", "zendesk", True, {"subdomain": "acme", "tags": ["cd"]}, b"\x00sealed", 10.0
    )
    await store.put_plugin_config(cfg)
    await store.put_plugin_config(PluginConfig("t1", "webhook", False))
    await store.put_plugin_config(PluginConfig("t2", "webhook", True, {"url": "https://x"}))
    assert await store.get_plugin_config("t1", "zendesk") == cfg
    assert await store.get_plugin_config("t1", "nope") is None
    cfg.enabled = False
    cfg.config = {}
    cfg.secrets_sealed = None
    cfg.updated_at = 20.0
    await store.put_plugin_config(cfg)
    assert await store.get_plugin_config("t1", "zendesk") == cfg
    assert [(c.tenant_id, c.plugin) for c in await store.list_plugin_configs()] == [
        ("t1", "webhook"),
        ("t1", "zendesk"),
        ("t2", "webhook"),
    ]
    assert [c.plugin for c in await store.list_plugin_configs("t1")] == ["webhook", "zendesk"]
    with pytest.raises(NotFound):
        await store.put_plugin_config(PluginConfig("ghost", "webhook", True))


# -- nonces ----------------------------------------------------------------------------


async def test_remember_nonce(store: Store, raw) -> None:
    assert await store.remember_nonce("t1", "n1", expires_at=100.0, now=0.0) is True
    assert await store.remember_nonce("t1", "n1", expires_at=200.0, now=50.0) is False
    assert await store.remember_nonce("t2", "n1", expires_at=100.0, now=50.0) is True
    assert await store.remember_nonce("t1", "n1", expires_at=300.0, now=100.0) is True  # expired
    assert await store.remember_nonce("t1", "n1", expires_at=400.0, now=299.0) is False
    results = await asyncio.gather(
        *(store.remember_nonce("t1", "race", expires_at=1000.0, now=1.0) for _ in range(10))
    )
    assert results.count(True) == 1
    # expired nonces are purged
    await store.remember_nonce("t3", "late", expires_at=5000.0, now=4000.0)
    rows = await raw.fetch("SELECT tenant_id, nonce FROM nonces ORDER BY tenant_id, nonce")
    assert rows == [("t3", "late")]


# -- at rest ---------------------------------------------------------------------------


async def test_sealed_bytes_stored_as_given(store: Store) -> None:
    await setup_chat(store)
    body = os.urandom(64) + b"\x00" + os.urandom(64)
    r = await store.append_message(msg("m1", body_sealed=bytearray(body)))
    assert r.message.body_sealed == body
    assert (await store.messages_after("c1", 0))[0].body_sealed == body
    with pytest.raises(TypeError):
        await store.append_message(msg("m2", body_sealed="plain text"))


async def test_failure_is_isolated_among_concurrent_writes(store: Store) -> None:
    await setup_chat(store)
    results = await asyncio.gather(
        *(
            store.append_message(
                msg(f"m{i}"),
                [event(f"e{i}", payload_sealed=None if i == 5 else b"p")],
            )
            for i in range(12)
        ),
        return_exceptions=True,
    )
    failed = [i for i, r in enumerate(results) if isinstance(r, BaseException)]
    assert failed == [5]
    assert isinstance(results[5], StoreError)
    seqs = sorted(r.message.seq for r in results if not isinstance(r, BaseException))
    assert seqs == list(range(1, 12))
    assert {m.msg_id for m in await store.messages_after("c1", 0)} == {
        f"m{i}" for i in range(12) if i != 5
    }
    assert len(await store.list_events()) == 11


# -- assignment (compare-and-set) ------------------------------------------------------


async def test_assign_chat_accept_race(store: Store, second_store: Store) -> None:
    await setup_chat(store)
    results = await asyncio.gather(
        *(
            (store, second_store)[i % 2].assign_chat("c1", agent_id=f"a{i}", now=150.0 + i)
            for i in range(10)
        )
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    won = winners[0]
    assert won.state == "active" and won.assigned_agent_id is not None
    assert won.accepted_at is not None
    assert await store.get_chat("c1") == won


async def test_assign_chat_transfer_requeue(store: Store) -> None:
    await setup_chat(store, queue="sales")
    accepted = await store.assign_chat("c1", agent_id="a1", now=150.0)
    assert (accepted.state, accepted.assigned_agent_id, accepted.accepted_at, accepted.queue) == (
        "active",
        "a1",
        150.0,
        "sales",
    )
    # accept only works on queued chats
    assert await store.assign_chat("c1", agent_id="a2", now=151.0) is None

    # transfer: active → another agent, only if a1 still holds it
    transfer = dict(from_states=("active",), check_agent=True, expected_agent_id="a1")
    assert (
        await store.assign_chat(
            "c1", agent_id="a2", now=160.0, **{**transfer, "expected_agent_id": "a9"}
        )
        is None
    )
    moved = await store.assign_chat("c1", agent_id="a2", queue="billing", now=160.0, **transfer)
    assert (moved.assigned_agent_id, moved.queue, moved.accepted_at) == ("a2", "billing", 150.0)
    assert await store.assign_chat("c1", agent_id="a3", now=161.0, **transfer) is None  # stale

    # back to the queue
    requeued = await store.assign_chat(
        "c1",
        agent_id=None,
        from_states=("active",),
        check_agent=True,
        expected_agent_id="a2",
        now=170.0,
    )
    assert (requeued.state, requeued.assigned_agent_id, requeued.queue) == (
        "queued",
        None,
        "billing",
    )
    # check_agent with expected None matches an unassigned chat
    again = await store.assign_chat(
        "c1", agent_id="a4", check_agent=True, expected_agent_id=None, now=180.0
    )
    assert again.assigned_agent_id == "a4" and again.accepted_at == 150.0
    assert (await store.get_chat("c1")).last_seq == 0

    assert await store.assign_chat("ghost", agent_id="a1", now=1.0) is None
    await store.erase_chat("c1")
    assert await store.assign_chat("c1", agent_id="a1", from_states=("closed",), now=1.0) is None


async def test_an_agents_reply_is_stored_only_while_the_chat_is_theirs(store: Store) -> None:
    """``NewMessage.assigned_only``: the store checks in the append's own transaction that
    the chat is active and assigned to the reply's sender, alone and in a batch of appends
    committed together; a resend of a stored reply is still answered as a duplicate."""
    await setup_chat(store, "c1", state="active", assigned_agent_id="a1")
    await setup_chat(store, "q1")  # waiting in its queue: nobody's
    await setup_chat(store, "shut", state="closed", assigned_agent_id="a1")

    def reply(msg_id: str, chat_id: str = "c1", agent: str = "a1") -> NewMessage:
        return msg(msg_id, chat_id, sender="agent", sender_agent_id=agent, assigned_only=True)

    first = await store.append_message(reply("r1"))
    assert first.message.seq == 1
    for refused in (reply("x1", agent="a2"), reply("x2", chat_id="q1")):
        with pytest.raises(NotAssigned):
            await store.append_message(refused)
    with pytest.raises(ChatClosed):
        await store.append_message(reply("x3", chat_id="shut"))
    together = await asyncio.gather(
        store.append_message(reply("r2")),
        store.append_message(reply("x4", agent="a2")),
        store.append_message(reply("x5", chat_id="q1")),
        store.append_message(reply("r1")),  # a resend
        store.append_message(msg("m1", "q1")),  # the customer writes on
        return_exceptions=True,
    )
    r2, x4, x5, resent, m1 = together
    assert isinstance(x4, NotAssigned) and isinstance(x5, NotAssigned)
    assert resent.duplicate and resent.message == first.message  # type: ignore[union-attr]
    assert r2.message.seq == 2 and m1.message.seq == 1  # type: ignore[union-attr]
    assert [m.msg_id for m in await store.messages_after("c1", 0)] == ["r1", "r2"]
    assert [m.msg_id for m in await store.messages_after("q1", 0)] == ["m1"]
