"""Agent invitations in the store (migration 0007), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from gateway.store.base import Invite
from tests.gateway.store.helpers import tenant


def _invite(iid: str, tenant_id: str = "t1", **kw) -> Invite:
    return Invite(
        id=iid,
        tenant_id=tenant_id,
        email=kw.pop("email", f"{iid}@example.com"),
        display_name=kw.pop("display_name", "新同事 " + iid),
        role=kw.pop("role", "agent"),
        token_hash=kw.pop("token_hash", "h-" + iid),
        created_by=kw.pop("created_by", "a1"),
        created_at=kw.pop("created_at", 100.0),
        expires_at=kw.pop("expires_at", 1000.0),
        **kw,
    )


async def test_invites_round_trip_list_and_status(store) -> None:
    await store.create_tenant(tenant("t1"))
    await store.create_tenant(tenant("t2"))
    await store.create_invite(_invite("inv_1"))
    await store.create_invite(_invite("inv_2", created_at=200.0))
    await store.create_invite(_invite("inv_3", tenant_id="t2"))
    assert await store.get_invite("h-inv_1") == _invite("inv_1")
    assert await store.get_invite("nope") is None
    assert [i.id for i in await store.list_invites("t1")] == ["inv_2", "inv_1"]
    assert [i.id for i in await store.list_invites("t2")] == ["inv_3"]
    invite = _invite("x")
    assert [invite.status(t) for t in (999.0, 1000.0)] == ["pending", "expired"]


async def test_claim_is_single_use_and_respects_expiry_and_revocation(store) -> None:
    await store.create_tenant(tenant("t1"))
    await store.create_tenant(tenant("t2"))
    for iid in ("inv_a", "inv_b", "inv_c"):
        await store.create_invite(_invite(iid))

    # two concurrent claims of one invite: exactly one wins
    results = await asyncio.gather(
        store.claim_invite("inv_a", "agt_1", 500.0), store.claim_invite("inv_a", "agt_2", 500.0)
    )
    assert sorted(results) == [False, True]
    used = await store.get_invite("h-inv_a")
    assert used.status(600.0) == "used" and used.used_at == 500.0
    assert used.agent_id == ("agt_1" if results[0] else "agt_2")
    assert await store.revoke_invite("t1", "inv_a", "a1", 600.0) is False  # used: not revocable

    # expired: cannot be claimed
    assert await store.claim_invite("inv_b", "agt_3", 1000.0) is False
    # revoked: only by its own tenant, once, and then not claimable
    assert await store.revoke_invite("t2", "inv_c", "b1", 300.0) is False
    assert await store.revoke_invite("t1", "inv_c", "a1", 300.0) is True
    assert await store.revoke_invite("t1", "inv_c", "a1", 310.0) is False
    revoked = await store.get_invite("h-inv_c")
    assert (revoked.revoked_at, revoked.revoked_by, revoked.status(310.0)) == (
        300.0,
        "a1",
        "revoked",
    )
    assert await store.claim_invite("inv_c", "agt_4", 320.0) is False
