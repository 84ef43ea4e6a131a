"""Queue changes reach a console as ``queue_update`` frames holding only what changed.

Unit tests of ``QueueView`` (the per-console difference), then real consoles over real
websockets: a console that applies the updates it gets to the snapshot it started from
has exactly the queue a fresh snapshot shows, and a chat of a queue the agent does not
serve never appears in its updates.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import aiohttp
import pytest

from gateway.protocol import QueueEntry, QueueSnapshot, QueueUpdate
from gateway.sdk.client import AgentClient, CustomerClient
from gateway.ws.queue_updates import QueueView
from tests.gateway.helpers import bearer, login, make_agent, start_gateway

Listed = dict[str, tuple[bool, QueueEntry]]


def _entry(chat: str, state: str = "queued", **changes: object) -> QueueEntry:
    fields: dict[str, object] = {
        "chat": chat,
        "queue": "default",
        "waiting_since": 1.0,
        "verified": False,
        "state": state,
    }
    fields.update(changes)
    return QueueEntry(**fields)  # type: ignore[arg-type]


def _listed(snapshot: QueueSnapshot) -> Listed:
    listed = {e.chat: (False, e) for e in snapshot.chats}
    listed.update((e.chat, (True, e)) for e in snapshot.mine)
    return listed


def _apply(listed: Listed, update: QueueUpdate) -> Listed:
    """What a console does with an update (console.js ``onQueueUpdate``)."""
    result = dict(listed)
    for chat in update.gone:
        result.pop(chat, None)
    result.update((e.chat, (False, e)) for e in update.chats)
    result.update((e.chat, (True, e)) for e in update.mine)
    return result


def test_an_unchanged_queue_sends_nothing_and_changes_send_only_themselves() -> None:
    view = QueueView()
    a, b, c = _entry("a"), _entry("b"), _entry("c")
    first = QueueSnapshot(chats=[a, b], mine=[c])
    assert view.shown(first) is first
    assert view.changes(QueueSnapshot(chats=[a, b], mine=[c])) is None

    handled = _entry("b", handled=True)
    accepted = _entry("a", "active", agent="me")
    update = view.changes(QueueSnapshot(chats=[handled, _entry("d")], mine=[accepted, c]))
    assert update == QueueUpdate(chats=[handled, _entry("d")], mine=[accepted], gone=[])

    update = view.changes(QueueSnapshot(chats=[_entry("d")], mine=[accepted]))
    assert update == QueueUpdate(chats=[], mine=[], gone=["b", "c"])


def test_a_whole_snapshot_resets_what_the_console_has() -> None:
    view = QueueView()
    view.shown(QueueSnapshot(chats=[_entry("a")], mine=[]))
    view.shown(QueueSnapshot(chats=[_entry("b")], mine=[]))  # asked for the queue again
    assert view.changes(QueueSnapshot(chats=[_entry("b")], mine=[])) is None


def test_a_changed_count_of_unlisted_customers_is_an_update_of_its_own() -> None:
    view = QueueView()
    listed = [_entry("a")]
    view.shown(QueueSnapshot(chats=listed, mine=[], waiting_unlisted=3))
    assert view.changes(QueueSnapshot(chats=listed, mine=[], waiting_unlisted=3)) is None
    update = view.changes(QueueSnapshot(chats=listed, mine=[], waiting_unlisted=4))
    assert update == QueueUpdate(chats=[], mine=[], gone=[], waiting_unlisted=4)
    update = view.changes(QueueSnapshot(chats=[], mine=[], waiting_unlisted=4))
    assert update == QueueUpdate(chats=[], mine=[], gone=["a"], waiting_unlisted=4)


def test_updates_applied_in_order_rebuild_every_snapshot() -> None:
    rng = random.Random(18)
    view = QueueView()
    chats = [f"c{i}" for i in range(12)]

    def random_snapshot() -> QueueSnapshot:
        waiting, mine = [], []
        for chat in rng.sample(chats, rng.randint(0, len(chats))):
            entry = _entry(chat, rng.choice(["queued", "active"]), handled=rng.random() < 0.3)
            (mine if rng.random() < 0.3 else waiting).append(entry)
        return QueueSnapshot(chats=waiting, mine=mine)

    snapshot = random_snapshot()
    console = _listed(view.shown(snapshot))
    for _ in range(500):
        snapshot = random_snapshot()
        update = view.changes(snapshot)
        if update is None:
            assert console == _listed(snapshot)
            continue
        console = _apply(console, update)
        assert console == _listed(snapshot)


# ---------------------------------------------------------------------- real consoles


@pytest.fixture
async def gw(tmp_path: Path):
    runner, base, svc = await start_gateway(tmp_path)
    async with aiohttp.ClientSession() as http:
        yield http, base, svc
    await runner.cleanup()


async def _console(http, base, svc, email: str, queues: list[str] | None, admin: str):
    agent, secret, password = await make_agent(svc, email)
    if queues is not None:
        async with http.patch(
            f"{base}/api/agents/{agent.id}", headers=bearer(admin), json={"queues": queues}
        ) as resp:
            assert resp.status == 200
    token = await login(http, base, email, password, secret, svc.clock())
    client = AgentClient(base, token=token, gateway_key=svc.identity.verify_key_b64)
    await client.connect()
    snapshot = await client.wait_for(QueueSnapshot)
    return client, _listed(snapshot)


async def _update_listing(client: AgentClient, listed: Listed, chat: str, placed: str) -> Listed:
    """Apply the console's updates until ``chat`` is ``placed`` (waiting, mine or gone)."""
    while True:
        listed = _apply(listed, await client.wait_for(QueueUpdate, timeout=10))
        where = listed.get(chat)
        if (placed, where and where[0]) in (("gone", None), ("waiting", False), ("mine", True)):
            return listed


async def test_consoles_follow_the_queue_from_updates_alone(gw) -> None:
    http, base, svc = gw
    _, secret, password = await make_agent(svc, "boss@example.com", role="admin")
    admin = await login(http, base, "boss@example.com", password, secret, svc.clock())
    async with http.patch(
        f"{base}/api/tenant", headers=bearer(admin), json={"queues": ["billing", "sales"]}
    ) as resp:
        assert resp.status == 200
    svc.tenants.invalidate("demo")
    amy, amy_listed = await _console(http, base, svc, "amy@example.com", None, admin)
    bob, bob_listed = await _console(http, base, svc, "bob@example.com", None, admin)
    bea, bea_listed = await _console(http, base, svc, "bea@example.com", ["billing"], admin)
    key = svc.identity.verify_key_b64
    customers = [CustomerClient(base, "demo", origin=base, gateway_key=key) for _ in range(2)]
    try:
        for customer in customers:
            await customer.connect()
        sales = (await customers[0].open(queue="sales", profile={"name": "Sam"})).chat
        amy_listed = await _update_listing(amy, amy_listed, sales, "waiting")
        bob_listed = await _update_listing(bob, bob_listed, sales, "waiting")
        billing = (await customers[1].open(queue="billing")).chat
        # Bea serves billing only: her first update is the billing chat alone, with no word
        # of the sales chat (that nothing at all is sent for a change she does not list is
        # the unit test's: here the two openings may share one update).
        first = await bea.wait_for(QueueUpdate, timeout=10)
        assert first == QueueUpdate(chats=[first.chats[0]], mine=[], gone=[])
        assert first.chats[0].chat == billing
        bea_listed = _apply(bea_listed, first)

        await amy.accept(sales)
        amy_listed = await _update_listing(amy, amy_listed, sales, "mine")
        bob_listed = await _update_listing(bob, bob_listed, sales, "gone")
        assert (amy_listed[sales][1].state, amy_listed[sales][1].agent) == ("active", "amy")

        for client, listed in ((amy, amy_listed), (bob, bob_listed), (bea, bea_listed)):
            if billing not in listed:
                listed = await _update_listing(client, listed, billing, "waiting")
            assert _listed(await client.queue()) == listed  # updates alone kept it exact
    finally:
        for client in (amy, bob, bea, *customers):
            await client.aclose()


async def test_a_console_that_did_not_ask_for_updates_gets_the_whole_queue(gw) -> None:
    """A console page from before ``queue_update`` (no ``queue_updates`` in ``key``) still
    sees every change, as whole ``queue`` frames: left open across an upgrade it keeps a
    live queue."""
    http, base, svc = gw
    _, secret, password = await make_agent(svc, "old@example.com")
    token = await login(http, base, "old@example.com", password, secret, svc.clock())
    key = svc.identity.verify_key_b64
    old = AgentClient(base, token=token, gateway_key=key, queue_updates=False)
    customer = CustomerClient(base, "demo", origin=base, gateway_key=key)
    try:
        await old.connect()
        assert (await old.wait_for(QueueSnapshot)).chats == []
        await customer.connect()
        chat = (await customer.open()).chat
        snapshot = await old.wait_for(QueueSnapshot, timeout=10)
        assert [e.chat for e in snapshot.chats] == [chat]
        assert not [f for f in old.drain() if isinstance(f, QueueUpdate)]
    finally:
        await old.aclose()
        await customer.aclose()


async def test_a_change_heard_while_the_first_queue_is_read_comes_after_it(
    gw, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first word about the queue is the whole ``queue``: a change heard while it was
    being read follows it as an update (an update before any ``queue`` would have nothing
    to apply to, and the older whole queue after it would undo it)."""
    http, base, svc = gw
    _, secret, password = await make_agent(svc, "ann@example.com")
    token = await login(http, base, "ann@example.com", password, secret, svc.clock())
    key = svc.identity.verify_key_b64
    real = svc.chats.queue_snapshot
    first_read, release = asyncio.Event(), asyncio.Event()
    reads = 0

    async def first_read_held(principal, not_before=None):
        nonlocal reads
        reads += 1
        snapshot = await real(principal, not_before)
        if reads == 1:  # read before the customer opens, sent after
            first_read.set()
            await release.wait()
        return snapshot

    monkeypatch.setattr(svc.chats, "queue_snapshot", first_read_held)
    agent = AgentClient(base, token=token, gateway_key=key)
    customer = CustomerClient(base, "demo", origin=base, gateway_key=key)
    try:
        await agent.connect()
        await first_read.wait()
        await customer.connect()
        chat = (await customer.open()).chat
        await asyncio.sleep(0.3)  # the change's 50 ms coalescing window has long passed
        release.set()
        first = await agent.wait_for((QueueSnapshot, QueueUpdate), timeout=10)
        assert isinstance(first, QueueSnapshot) and first.chats == []
        update = await agent.wait_for(QueueUpdate, timeout=10)
        assert [e.chat for e in update.chats] == [chat]
    finally:
        await agent.aclose()
        await customer.aclose()
