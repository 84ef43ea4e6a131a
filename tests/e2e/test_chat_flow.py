"""Customer ⇄ agent chat through the real gateway over real sockets (issue: gateway core).

Handshake, queue, accept, messages both ways, typing, transfer, close; supervisors
watching; policy masking end to end; no plaintext in the SQLite file.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from auth.roles import Principal, Role
from gateway.protocol import Ack, ChatEvent, Flag, Msg, Notice, Typing
from gateway.sdk.client import CustomerClient, ServerError
from tests.e2e.conftest import SocketGateway, queue_with
from tests.gateway.helpers import start_gateway

CARD = "4111 1111 1111 1111"


async def test_full_conversation_handshake_queue_accept_transfer_close(gw: SocketGateway) -> None:
    alice = await gw.agent("alice@example.com")
    bob = await gw.agent("bob@example.com")
    customer = gw.customer()
    await customer.connect()
    welcome = await customer.open(profile={"name": "Ada", "topic": "billing"})
    assert welcome.state == "queued" and welcome.token

    snap = await queue_with(alice, welcome.chat)
    entry = next(e for e in snap.chats if e.chat == welcome.chat)
    assert entry.name == "Ada" and entry.topic == "billing" and entry.verified is False

    await alice.accept(welcome.chat)
    joined = await customer.wait_for(lambda f: isinstance(f, ChatEvent) and f.event == "joined")
    assert joined.agent == "alice"

    ack = await customer.send_text("Hello, my order is late")
    assert isinstance(ack, Ack) and ack.seq == 1
    got = await alice.wait_for(lambda f: isinstance(f, Msg) and f.seq == 1)
    assert got.text == "Hello, my order is late" and got.sender == "customer"

    await alice.typing(welcome.chat, True)
    typing = await customer.wait_for(Typing)
    assert typing.sender == "agent" and typing.on

    reply = await alice.send_text(welcome.chat, "Sorry! Let me check.")
    assert isinstance(reply, Ack) and reply.seq == 2
    seen = await customer.wait_for(lambda f: isinstance(f, Msg) and f.seq == 2)
    assert seen.sender == "agent" and seen.agent == "alice" and seen.text == "Sorry! Let me check."

    # transfer alice → bob: bob is assigned, alice loses the chat, customer sees the change
    await alice.transfer(welcome.chat, to_agent=bob.ready.agent)
    assigned = await bob.wait_for(lambda f: isinstance(f, ChatEvent) and f.event == "assigned")
    assert assigned.chat == welcome.chat
    left = await customer.wait_for(lambda f: isinstance(f, ChatEvent) and f.event == "left")
    assert left.agent == "alice"
    with pytest.raises(ServerError) as refused:
        await alice.send_text(welcome.chat, "still here?")
    assert refused.value.code == "not_assigned"
    history = await bob.wait_for(lambda f: isinstance(f, Msg) and f.seq == 2)
    assert history.text == "Sorry! Let me check."  # the new agent gets the history

    bob_ack = await bob.send_text(welcome.chat, "Bob here, it ships today.")
    assert isinstance(bob_ack, Ack) and bob_ack.seq == 3
    await customer.wait_for(lambda f: isinstance(f, Msg) and f.seq == 3)

    await bob.close_chat(welcome.chat, "resolved")
    closed = await customer.wait_for(lambda f: isinstance(f, ChatEvent) and f.event == "closed")
    assert closed.reason == "resolved"
    with pytest.raises(ServerError) as after_close:
        await customer.send_text("one more thing")
    assert after_close.value.code == "chat_closed"

    chat = await gw.svc.store.get_chat(welcome.chat)
    assert chat is not None and chat.state == "closed" and chat.last_seq == 3
    for client in (customer, alice, bob):
        await client.aclose()


async def test_policy_masks_card_for_agent_and_notifies_customer(gw: SocketGateway) -> None:
    supervisor = await gw.agent("sue@example.com", role="supervisor")
    agent = await gw.agent("carl@example.com")
    customer, welcome = await gw.accepted_chat(agent)

    result = await customer.send_text(f"my card is {CARD}, charge it")
    notice = result if isinstance(result, Notice) else await customer.wait_for(Notice)
    assert notice.action == "masked" and "card" in notice.kinds
    assert "payment" in notice.message.lower()
    masked = await agent.wait_for(lambda f: isinstance(f, Msg) and f.sender == "customer")
    assert CARD not in masked.text and masked.text.endswith("1111, charge it")
    assert "4111" not in masked.text.replace("1111, charge", "")

    # the stored transcript holds only the masked form
    history = await gw.svc.chats.history(await gw.svc.store.get_chat(welcome.chat), 0)
    assert [m.text for m in history] == [masked.text]

    # an agent may not send a full card number: blocked, never delivered
    blocked = await agent.send_text(welcome.chat, f"your card {CARD} is on file")
    assert isinstance(blocked, Notice) and blocked.action == "blocked"
    # Barrier: a pong is queued after anything published before it (the in-process bus
    # enqueues synchronously), so a delivered message would be buffered by now.
    await customer.ping()
    assert not any(isinstance(f, Msg) and f.sender == "agent" for f in customer.drain())
    await supervisor.aclose()
    for client in (customer, agent):
        await client.aclose()


async def test_supervisor_watches_and_sees_flags(gw: SocketGateway) -> None:
    await gw.update_tenant_settings(
        policy={"keywords": [{"term": "wire the money", "category": "fraud", "action": "flag"}]}
    )
    supervisor = await gw.agent("sue@example.com", role="supervisor")
    agent = await gw.agent("carl@example.com")
    customer, welcome = await gw.accepted_chat(agent)
    await supervisor.watch(welcome.chat)

    await customer.send_text("please wire the money to my new account")
    flag = await supervisor.wait_for(Flag)
    assert flag.chat == welcome.chat and "fraud" in " ".join(flag.kinds)
    watched = await supervisor.wait_for(lambda f: isinstance(f, Msg) and f.chat == welcome.chat)
    assert watched.seq == 1
    # plain agents never receive flags (the pong is a barrier: see above)
    await agent.ping()
    assert not any(isinstance(f, Flag) for f in agent.drain())
    audit = await gw.svc.store.query_audit(tenant_id="demo", action="transcript.opened")
    assert any(e.target == welcome.chat for e in audit)
    for client in (customer, agent, supervisor):
        await client.aclose()


async def test_duplicate_message_ids_are_stored_once(gw: SocketGateway) -> None:
    customer = gw.customer()
    await customer.connect()
    await customer.open()
    first = await customer.send_text("same message", msg_id="m-1")
    again = await customer.send_text("same message", msg_id="m-1")
    assert isinstance(first, Ack) and isinstance(again, Ack) and first.seq == again.seq == 1
    chat = await gw.svc.store.get_chat(customer.chat)
    assert chat.last_seq == 1
    await customer.aclose()


async def test_sqlite_file_contains_no_message_plaintext(gw: SocketGateway) -> None:
    agent = await gw.agent("carl@example.com")
    customer, welcome = await gw.accepted_chat(
        agent, profile={"name": "Zebulon Quartermaine", "topic": "refund"}
    )
    secrets = ["xylophone-marmalade-42", "Quartermaine", "the parcel never arrived"]
    await customer.send_text(f"{secrets[0]}: {secrets[2]}")
    await agent.send_text(welcome.chat, "zanzibar-velvet-reply")
    await customer.close()
    await customer.aclose()
    await agent.aclose()
    await gw.svc.store.close()  # checkpoint the WAL into the main file
    data = b"".join(p.read_bytes() for p in (gw.tmp / "data").glob("cipherdesk.db*"))
    assert len(data) > 4096
    for needle in [*secrets, "zanzibar-velvet-reply", "refund"]:
        assert needle.encode() not in data, f"plaintext {needle!r} found in the database"
    await gw.svc.store.open()


async def test_flagged_card_is_masked_for_agent_and_original_only_for_supervisor(
    gw: SocketGateway,
) -> None:
    """Policy action ``flag``: delivered masked, the supervisor is alerted and may read the
    original through the audited API; the stored transcript holds only the masked form."""
    await gw.update_tenant_settings(policy={"actions": {"card": {"customer": "flag"}}})
    supervisor = await gw.agent("sue@example.com", role="supervisor")
    agent = await gw.agent("carl@example.com")
    customer, welcome = await gw.accepted_chat(agent)

    await customer.send_text(f"charge {CARD} please")
    notice = await customer.wait_for(Notice)
    assert notice.action == "flagged" and "card" in notice.kinds
    flag = await supervisor.wait_for(Flag)
    delivered = await agent.wait_for(lambda f: isinstance(f, Msg) and f.sender == "customer")
    assert CARD not in delivered.text and "1111" in delivered.text
    await agent.ping()  # barrier: a flag for this agent would be buffered before the pong
    assert not any(isinstance(f, Flag) for f in agent.drain())
    stored = await gw.svc.chats.history(await gw.svc.store.get_chat(welcome.chat), 0)
    assert [m.text for m in stored] == [delivered.text]

    sue = await gw.svc.store.get_agent_by_email("sue@example.com")
    await gw.login("carl2@example.com")
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{gw.base}/api/flags/{flag.flag_id}/original",
            headers={"Authorization": f"Bearer {gw.tokens['carl2@example.com']}"},
        ) as refused:
            assert refused.status == 403
            assert CARD not in await refused.text()
    original = await gw.svc.chats.flag_original(
        Principal(agent_id=sue.id, tenant_id="demo", role=Role.SUPERVISOR),
        flag.flag_id,
        "127.0.0.1",
    )
    assert original["original"] == f"charge {CARD} please"
    audit = await gw.svc.store.query_audit(tenant_id="demo", action="flag.original_viewed")
    assert [e.actor for e in audit] == [sue.id]
    for client in (customer, agent, supervisor):
        await client.aclose()


async def test_welcome_tells_the_customer_whether_an_agent_is_online(gw: SocketGateway) -> None:
    lonely = gw.customer()
    await lonely.connect()
    assert (await lonely.open()).agents_online == 0  # the widget offers its offline form
    agent = await gw.agent("olive@example.com")
    customer = gw.customer()
    await customer.connect()
    assert (await customer.open()).agents_online == 1
    await agent.aclose()
    for _ in range(500):  # the server notices the close on its own schedule (≤ 10 s)
        if not await gw.svc.presence.online("demo"):
            break
        await asyncio.sleep(0.02)
    again = gw.customer()
    await again.connect()
    assert (await again.open()).agents_online == 0
    for client in (lonely, customer, again):
        await client.aclose()


async def test_shutdown_tells_clients_to_go_away_promptly(tmp_path: Path) -> None:
    """On shutdown live sockets get 1001 (resume elsewhere / after restart) at once,
    not after aiohttp's whole shutdown timeout."""
    runner, base, svc = await start_gateway(tmp_path, server={"shutdown_timeout": 30.0})
    customer = CustomerClient(base, "demo", origin=base, gateway_key=svc.identity.verify_key_b64)
    await customer.connect()
    await customer.open()
    acked = await customer.send_text("before the restart")
    started = time.monotonic()
    await runner.cleanup()
    code, _reason = await customer.wait_closed(10)
    assert code == 1001
    assert time.monotonic() - started < 10
    assert isinstance(acked, Ack)
    await customer.aclose()
