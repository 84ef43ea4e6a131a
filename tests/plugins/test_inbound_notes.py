"""Inbound plugin API, issue 17 (rest): internal notes from the helpdesk reach the chat's
agents and never the customer; "handled" marks the chat for the console without closing
it; Freshdesk automation rules authenticate with a token plus a single-use event id and
timestamp. Real sockets: a customer widget connection and an agent console connection."""

from __future__ import annotations

import base64
import contextlib
import json
import time

import aiohttp
import pytest
from structlog.testing import capture_logs

from gateway.helpdesk_inbox import HelpdeskInbox
from gateway.protocol import ChatEvent, HelpdeskNote, Msg
from gateway.sdk.client import AgentClient, CustomerClient
from plugins.webhook import signature_header
from tests.gateway.helpers import login, make_agent, start_gateway

SECRET = "inbound-Zq8LrT2vN5xK9pW3"
FD_TOKEN = "fd-7c1e9a55b0d34f2e8a61c0b9d4e7f3a2c5b8e1d0"
EMAIL = "li.wei@example.com"
CARD = "4111 1111 1111 1111"


@contextlib.asynccontextmanager
async def running(tmp_path, store: dict | None = None):
    """A gateway with both helpdesk plugins, a customer in a chat and an agent on it."""
    extra = {"store": store} if store else {}
    runner, base, svc = await start_gateway(
        tmp_path, plugins={"allow_private_targets": True}, **extra
    )
    await svc.plugins.configure(
        "demo",
        "zendesk",
        {
            "base_url": "http://127.0.0.1:9",
            "email": "bot@example.com",
            "api_token": "zd-api-token",
            "inbound_secret": SECRET,
        },
        allow_private=True,
    )
    await svc.plugins.configure(
        "demo",
        "freshdesk",
        {"base_url": "http://127.0.0.1:9", "api_key": "fd-api-key", "inbound_secret": FD_TOKEN},
        allow_private=True,
    )
    tenant = await svc.store.get_tenant("demo")
    tenant.settings = {**tenant.settings, "policy": {"actions": {"email": "mask"}}}
    await svc.store.update_tenant(tenant)
    svc.tenants.invalidate("demo")
    customer = CustomerClient(base, "demo", origin=base, gateway_key=svc.identity.verify_key_b64)
    try:
        await customer.connect()
        welcome = await customer.open()
        async with aiohttp.ClientSession() as http:
            agent_row, totp, password = await make_agent(svc, "ana@example.com")
            token = await login(http, base, agent_row.email, password, totp, time.time())
            async with AgentClient(base, token=token, origin=base) as agent:
                await agent.accept(welcome.chat)
                await customer.wait_for(lambda f: isinstance(f, ChatEvent) and f.event == "joined")
                customer.drain()
                yield base, svc, http, customer, agent, welcome.chat
    finally:
        await customer.aclose()
        await runner.cleanup()


@pytest.fixture
async def gw(tmp_path):
    async with running(tmp_path) as env:
        yield env


@pytest.fixture
async def gw_pg(tmp_path, postgres_dsn):
    async with running(tmp_path, {"url": postgres_dsn}) as env:
        yield env


def signed(body: dict, *, at: float | None = None) -> tuple[bytes, dict]:
    raw = json.dumps(body).encode()
    ts = int(time.time() if at is None else at)
    return raw, {
        "Content-Type": "application/json",
        "X-Cipherdesk-Signature": signature_header([SECRET], ts, raw),
    }


async def post(http, base, raw, headers, plugin="zendesk"):
    async with http.post(f"{base}/api/inbound/demo/{plugin}", data=raw, headers=headers) as r:
        return r.status, await r.json()


async def customer_got_nothing(customer: CustomerClient) -> list:
    """Barrier, not a sleep: the pong comes after anything published before it."""
    await customer.ping()
    return [f for f in customer.drain() if isinstance(f, Msg | HelpdeskNote | ChatEvent)]


async def test_private_comment_is_a_note_for_agents_only(gw):
    base, svc, http, customer, agent, chat = gw
    body = {
        "action": "comment",
        "public": "false",  # {{ticket.latest_comment.is_public}} prints text
        "chat": chat,
        "id": "zd-301",
        "text": f"VIP customer, also reachable at {EMAIL}",
        "agent_name": "Li Wei",
    }
    raw, headers = signed(body)
    status, answer = await post(http, base, raw, headers)
    assert (status, answer["action"], answer["policy"]) == (200, "note", "masked"), answer
    note = await agent.wait_for(HelpdeskNote, timeout=5)
    assert (note.chat, note.agent, note.plugin) == (chat, "Li Wei", "zendesk")
    assert "VIP customer" in note.text and EMAIL not in note.text  # masked as for agents
    assert await customer_got_nothing(customer) == []
    # stored, outside the chat's messages: the customer's history cannot contain it
    assert await svc.chats.messages(chat, 0) == []
    stored = await svc.store.get_chat(chat)
    [kept] = await HelpdeskInbox(svc.store, svc.chats.keys, svc.clock).notes(stored)
    assert kept.text == note.text
    # the agent's full history carries it; a resumed customer does not get it
    agent.drain()
    assert await agent.history(chat) == []
    assert [f.text for f in agent.drain() if isinstance(f, HelpdeskNote)] == [note.text]
    await customer.reconnect()
    assert await customer_got_nothing(customer) == []
    # the vendor retrying the same comment id (newly signed) stores and sends nothing new
    raw2, headers2 = signed(body, at=time.time() + 1)
    assert (await post(http, base, raw2, headers2))[0] == 200
    await agent.ping()
    assert [f for f in agent.drain() if isinstance(f, HelpdeskNote)] == []
    assert len(await HelpdeskInbox(svc.store, svc.chats.keys, svc.clock).notes(stored)) == 1
    [entry] = [
        a for a in await svc.store.query_audit(tenant_id="demo") if a.action == "plugin.inbound"
    ][-1:]
    assert entry.details["inbound_action"] == "note" and entry.actor == "plugin:zendesk"
    assert "VIP" not in json.dumps(entry.details)


async def test_public_comment_still_reaches_the_customer(gw):
    base, _svc, http, customer, _agent, chat = gw
    raw, headers = signed(
        {"action": "comment", "public": True, "chat": chat, "id": "zd-1", "text": "Hello!"}
    )
    status, answer = await post(http, base, raw, headers)
    assert (status, answer["action"]) == (200, "reply")
    msg = await customer.wait_for(Msg, timeout=5)
    assert msg.text == "Hello!"


async def test_blocked_note_is_neither_stored_nor_sent(gw):
    base, svc, http, customer, agent, chat = gw
    raw, headers = signed({"action": "note", "chat": chat, "id": "n9", "text": f"card {CARD}"})
    status, answer = await post(http, base, raw, headers)
    assert (status, answer["policy"]) == (200, "blocked")
    await agent.ping()
    assert [f for f in agent.drain() if isinstance(f, HelpdeskNote)] == []
    assert await customer_got_nothing(customer) == []
    stored = await svc.store.get_chat(chat)
    assert await HelpdeskInbox(svc.store, svc.chats.keys, svc.clock).notes(stored) == []


async def test_solved_ticket_marks_the_chat_handled_without_closing_it(gw):
    base, svc, http, customer, agent, chat = gw
    raw, headers = signed(
        {"action": "status", "status": "Solved", "chat": chat, "agent_name": "Li Wei"}
    )
    status, answer = await post(http, base, raw, headers)
    assert (status, answer["action"]) == (200, "handled"), answer
    event = await agent.wait_for(
        lambda f: isinstance(f, ChatEvent) and f.event == "handled", timeout=5
    )
    assert (event.chat, event.agent, event.reason) == (chat, "Li Wei", "Solved")
    agent.drain()  # snapshots buffered before the mark
    snapshot = await agent.queue()
    assert [e.handled for e in snapshot.mine if e.chat == chat] == [True]
    assert await customer_got_nothing(customer) == []
    assert (await svc.store.get_chat(chat)).state == "active"  # not closed
    ack = await customer.send_text("one more question")
    assert getattr(ack, "seq", None) is not None  # the customer can still write
    [entry] = [
        a for a in await svc.store.query_audit(tenant_id="demo") if a.action == "plugin.inbound"
    ]
    assert (entry.details["inbound_action"], entry.details["outcome"]) == ("handled", "handled")


async def test_other_statuses_are_ignored_and_closed_chats_refused(gw):
    base, _svc, http, _customer, agent, chat = gw
    raw, headers = signed({"action": "status", "status": "Open", "chat": chat})
    status, answer = await post(http, base, raw, headers)
    assert (status, answer["action"]) == (200, "ignored")
    agent.drain()
    snapshot = await agent.queue()
    assert [e.handled for e in snapshot.mine if e.chat == chat] == [False]
    await agent.close_chat(chat)
    raw, headers = signed({"action": "handled", "chat": chat})
    status, answer = await post(http, base, raw, headers)
    assert (status, answer["error"]["code"]) == (409, "chat_closed")
    raw, headers = signed({"action": "note", "chat": chat, "text": "late"})
    status, answer = await post(http, base, raw, headers)
    assert (status, answer["error"]["code"]) == (409, "chat_closed")


# ------------------------------------------------------------------ Freshdesk token mode


def freshdesk(body: dict, *, token: str | None = FD_TOKEN, how: str = "header") -> dict:
    headers = {"Content-Type": "application/json"}
    if token is not None and how == "header":
        headers["X-Cipherdesk-Token"] = token
    elif token is not None and how == "basic":
        headers["Authorization"] = "Basic " + base64.b64encode(f"cd:{token}".encode()).decode()
    elif token is not None and how == "apikey":
        headers["Authorization"] = "Basic " + base64.b64encode(f"{token}:X".encode()).decode()
    return headers


def fd_note(chat: str, event: str, ts: object | None = None) -> dict:
    return {
        "action": "note",
        "chat": chat,
        "event": event,
        "ts": str(int(time.time())) if ts is None else ts,
        "text": "Refund approved by finance",
        "agent_name": "Mei Lin",
    }


@pytest.mark.parametrize("how", ["header", "basic", "apikey"])
async def test_freshdesk_automation_with_the_token_posts_a_private_note(gw, how):
    base, _svc, http, customer, agent, chat = gw
    raw = json.dumps(fd_note(chat, f"note-{how}")).encode()
    status, answer = await post(http, base, raw, freshdesk({}, how=how), plugin="freshdesk")
    assert (status, answer["action"]) == (200, "note"), answer
    note = await agent.wait_for(HelpdeskNote, timeout=5)
    assert (note.text, note.agent, note.plugin) == (
        "Refund approved by finance",
        "Mei Lin",
        "freshdesk",
    )
    assert await customer_got_nothing(customer) == []


async def test_freshdesk_resolved_status_marks_handled(gw):
    base, _svc, http, _customer, agent, chat = gw
    body = {"action": "status", "status": "Resolved", "chat": chat, "event": "st-1"}
    body["ts"] = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())  # RFC 2822
    status, answer = await post(
        http, base, json.dumps(body).encode(), freshdesk({}), plugin="freshdesk"
    )
    assert (status, answer["action"]) == (200, "handled"), answer
    event = await agent.wait_for(
        lambda f: isinstance(f, ChatEvent) and f.event == "handled", timeout=5
    )
    assert event.reason == "Resolved"


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("wrong_token", (401, "bad_signature")),
        ("missing_token", (401, "bad_signature")),
        ("token_for_zendesk", (401, "bad_signature")),
        ("replayed_event", (409, "replayed")),
        ("stale_ts", (400, "stale_event")),
        ("no_event", (400, "bad_request")),
        ("malformed", (400, "bad_request")),
        ("oversized", (413, "too_large")),
        ("not_json_type", (415, "unsupported_media_type")),
    ],
)
async def test_freshdesk_refusals_are_documented_and_logged_once(gw, case, expected):
    base, _svc, http, customer, agent, chat = gw
    body = fd_note(chat, "ev-1")
    headers = freshdesk(body)
    plugin = "freshdesk"
    if case == "replayed_event":
        first = await post(http, base, json.dumps(body).encode(), headers, plugin=plugin)
        assert first[0] == 200
        await agent.wait_for(HelpdeskNote, timeout=5)
        body = {**body, "text": "a different text, same event"}
    raw = json.dumps(body).encode()
    if case == "wrong_token":
        headers = freshdesk(body, token=FD_TOKEN[:-1] + "9")
    elif case == "missing_token":
        headers = freshdesk(body, token=None)
    elif case == "token_for_zendesk":
        plugin = "zendesk"  # Zendesk signs: its secret is never accepted as a bare token
        headers = freshdesk(body, token=SECRET)
    elif case == "stale_ts":
        raw = json.dumps({**body, "ts": str(int(time.time()) - 400)}).encode()
    elif case == "no_event":
        raw = json.dumps({k: v for k, v in body.items() if k != "event"}).encode()
    elif case == "malformed":
        raw = b'{"action": "note", "chat": '
    elif case == "oversized":
        raw = json.dumps({**body, "text": "x" * 70_000}).encode()
    elif case == "not_json_type":
        headers = {**headers, "Content-Type": "text/plain"}
    with capture_logs() as logs:
        status, answer = await post(http, base, raw, headers, plugin=plugin)
    assert (status, answer["error"]["code"]) == expected
    refused = [e for e in logs if e["event"] == "inbound_refused"]
    assert len(refused) == 1 and refused[0]["code"] == expected[1]
    assert FD_TOKEN not in repr(logs) and SECRET not in repr(logs)
    await agent.ping()
    assert [f for f in agent.drain() if isinstance(f, HelpdeskNote)] == []
    assert await customer_got_nothing(customer) == []


async def test_freshdesk_token_must_be_long(gw):
    _base, svc, _http, _customer, _agent, _chat = gw
    with pytest.raises(Exception, match="inbound_secret") as refused:
        await svc.plugins.configure(
            "demo",
            "freshdesk",
            {"base_url": "http://127.0.0.1:9", "api_key": "k", "inbound_secret": "short-token"},
            allow_private=True,
        )
    assert "short-token" not in str(refused.value)


async def test_supervisor_watching_gets_stored_and_live_notes(gw):
    base, svc, http, customer, _agent, chat = gw
    raw, headers = signed({"action": "note", "chat": chat, "id": "n1", "text": "first note"})
    assert (await post(http, base, raw, headers))[0] == 200
    sup_row, totp, password = await make_agent(svc, "sue@example.com", role="supervisor")
    token = await login(http, base, sup_row.email, password, totp, time.time())
    async with AgentClient(base, token=token, origin=base) as sup:
        await sup.watch(chat)
        assert [n.text for n in sup.drain() if isinstance(n, HelpdeskNote)] == ["first note"]
        raw, headers = signed({"action": "note", "chat": chat, "id": "n2", "text": "second"})
        assert (await post(http, base, raw, headers))[0] == 200
        live = await sup.wait_for(HelpdeskNote, timeout=5)
        assert live.text == "second"
    assert await customer_got_nothing(customer) == []


async def test_notes_on_postgresql(gw_pg):
    """Slots claimed with insert-if-absent and the retry check work on PostgreSQL too."""
    base, svc, http, customer, agent, chat = gw_pg
    for n, text in enumerate(["one", "two", "one"]):  # the third is a retry of the first
        raw, headers = signed(
            {"action": "note", "chat": chat, "id": f"pg-{text}", "text": text}, at=time.time() + n
        )
        assert (await post(http, base, raw, headers))[0] == 200
    stored = await svc.store.get_chat(chat)
    notes = await HelpdeskInbox(svc.store, svc.chats.keys, svc.clock).notes(stored)
    assert [x.text for x in notes] == ["one", "two"]
    agent.drain()
    await agent.history(chat)
    assert [f.text for f in agent.drain() if isinstance(f, HelpdeskNote)] == ["one", "two"]
    assert await customer_got_nothing(customer) == []
