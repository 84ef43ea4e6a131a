"""End-to-end mode in the store (migration 0015), on SQLite and PostgreSQL: device keys
and certificates, members, wrapped chat keys and their epochs, erasure."""

from __future__ import annotations

import asyncio

from gateway.store.base import E2EDevice
from tests.gateway.store.helpers import agent, chat, tenant


def _device(did: str, agent_id: str = "a1", tenant_id: str = "t1", **kw) -> E2EDevice:
    return E2EDevice(
        id=did,
        agent_id=agent_id,
        tenant_id=tenant_id,
        public_key=kw.pop("public_key", "pk-" + did),
        name=kw.pop("name", "laptop"),
        created_at=kw.pop("created_at", 10.0),
        **kw,
    )


async def _setup(store) -> None:
    await store.create_tenant(tenant("t1"))
    await store.create_tenant(tenant("t2"))
    await store.create_agent(agent("a1", "t1"))
    await store.create_agent(agent("b1", "t2"))
    await store.create_chat(chat("c1", mode="e2e", e2e_epoch=1), b"wrapped")
    await store.create_chat(chat("c2"), b"wrapped")  # an inspect chat


async def test_devices_certify_revoke_and_stay_in_their_tenant(store) -> None:
    await _setup(store)
    await store.add_e2e_device(_device("d1"))
    await store.add_e2e_device(_device("d2", created_at=20.0))
    await store.add_e2e_device(_device("d3", "b1", "t2"))
    assert [d.id for d in await store.list_e2e_devices("t1")] == ["d1", "d2"]
    assert [d.id for d in await store.list_e2e_devices("t1", "a1")] == ["d1", "d2"]
    assert await store.list_e2e_devices("t1", "b1") == []  # another tenant's agent
    assert await store.count_pending_e2e_devices("a1") == 2

    assert await store.certify_e2e_device("d1", "t2", "cert", "sig", 500.0) is False
    assert await store.certify_e2e_device("d1", "t1", "cert", "sig", 500.0) is True
    got = await store.get_e2e_device("d1")
    assert got == _device("d1", certificate="cert", signature="sig", expires_at=500.0)
    assert await store.count_pending_e2e_devices("a1") == 1

    assert await store.revoke_e2e_device("d1", "t2", 30.0) is False
    assert await store.revoke_e2e_device("d1", "t1", 30.0) is True
    assert await store.revoke_e2e_device("d1", "t1", 31.0) is False  # once
    assert await store.certify_e2e_device("d1", "t1", "cert2", "sig2", 600.0) is False
    assert (await store.get_e2e_device("d1")).revoked_at == 30.0


async def test_wraps_move_the_epoch_forward_once_and_carry_older_epochs(store) -> None:
    await _setup(store)
    assert await store.add_e2e_wraps("c1", 1, [("d1", "w1-1")], 1.0) is True
    assert await store.e2e_wrapped_devices("c1", 1) == {"d1"}
    # A re-key: epoch 2, and a device joining later gets epoch 1 too (history).
    wraps, older = [("d2", "w2-2")], [(1, "d2", "w2-1")]
    assert await store.add_e2e_wraps("c1", 2, wraps, 2.0, older, rekey=True) is True
    assert (await store.get_chat("c1")).e2e_epoch == 2
    assert await store.e2e_wraps_for("c1", "d2") == [(1, "w2-1"), (2, "w2-2")]
    # Not the epoch expected: refused, nothing stored (another end re-keyed first).
    assert await store.add_e2e_wraps("c1", 3, [("d3", "x")], 3.0) is False  # not a re-key
    assert await store.add_e2e_wraps("c1", 2, [("d3", "x")], 3.0, rekey=True) is False
    assert await store.add_e2e_wraps("c1", 4, [("d3", "x")], 3.0, rekey=True) is False
    assert await store.add_e2e_wraps("c1", 1, [("d3", "x")], 3.0) is False
    assert await store.e2e_wraps_for("c1", "d3") == []
    # A wrap stored twice keeps the first.
    assert await store.add_e2e_wraps("c1", 2, [("d2", "other")], 4.0) is True
    assert await store.e2e_wraps_for("c1", "d2") == [(1, "w2-1"), (2, "w2-2")]
    # Inspect chats take no wraps.
    assert await store.add_e2e_wraps("c2", 1, [("d1", "x")], 5.0) is False


async def test_two_ends_rekeying_at_once_one_wins(store) -> None:
    await _setup(store)
    results = await asyncio.gather(
        store.add_e2e_wraps("c1", 2, [("d1", "from-a")], 1.0, rekey=True),
        store.add_e2e_wraps("c1", 2, [("d1", "from-b")], 1.0, rekey=True),
    )
    assert sorted(results) == [False, True]
    assert (await store.get_chat("c1")).e2e_epoch == 2
    winner = "from-a" if results[0] else "from-b"
    assert await store.e2e_wraps_for("c1", "d1") == [(2, winner)]


async def test_members_and_erasure(store) -> None:
    await _setup(store)
    assert await store.add_e2e_member("c1", "s1", "watch", 1.0) is True
    assert await store.add_e2e_member("c1", "s1", "watch", 2.0) is False
    assert await store.add_e2e_member("c1", "s2", "watch", 3.0) is True
    assert await store.list_e2e_members("c1") == [("s1", "watch"), ("s2", "watch")]
    assert await store.remove_e2e_member("c1", "s1") is True
    assert await store.remove_e2e_member("c1", "s1") is False
    await store.add_e2e_wraps("c1", 1, [("d1", "w")], 1.0)
    assert await store.erase_chat("c1")
    assert await store.e2e_wraps_for("c1", "d1") == []
    assert await store.list_e2e_members("c1") == []
