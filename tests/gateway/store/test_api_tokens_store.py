"""Scoped API tokens in the store (migration 0006), on SQLite and PostgreSQL."""

from __future__ import annotations

from gateway.store.base import ApiToken
from tests.gateway.store.helpers import agent, tenant


def _token(tid: str, tenant_id: str = "t1", owner: str = "a1", **kw) -> ApiToken:
    return ApiToken(
        id=tid,
        tenant_id=tenant_id,
        owner_id=owner,
        name=kw.pop("name", tid),
        token_hash=kw.pop("token_hash", "h-" + tid),
        permissions=kw.pop("permissions", ["audit_read", "agent_manage"]),
        created_at=kw.pop("created_at", 100.0),
        expires_at=kw.pop("expires_at", 1000.0),
        **kw,
    )


async def test_api_tokens_round_trip_revoke_and_touch(store) -> None:
    await store.create_tenant(tenant("t1"))
    await store.create_tenant(tenant("t2"))
    await store.create_agent(agent("a1", "t1"))
    await store.create_agent(agent("b1", "t2"))
    await store.create_api_token(_token("tok_1", name="CI 部署"))
    await store.create_api_token(_token("tok_2", created_at=200.0))
    await store.create_api_token(_token("tok_3", tenant_id="t2", owner="b1"))

    got = await store.get_api_token("h-tok_1")
    assert got == _token("tok_1", name="CI 部署", permissions=["agent_manage", "audit_read"])
    assert await store.get_api_token("nope") is None
    assert [t.id for t in await store.list_api_tokens("t1")] == ["tok_2", "tok_1"]
    assert [t.id for t in await store.list_api_tokens("t2")] == ["tok_3"]

    # another tenant cannot revoke it; revoking twice is False
    assert await store.revoke_api_token("t2", "tok_1", 150.0) is False
    assert await store.revoke_api_token("t1", "tok_1", 150.0) is True
    assert await store.revoke_api_token("t1", "tok_1", 160.0) is False
    assert (await store.get_api_token("h-tok_1")).revoked_at == 150.0

    await store.touch_api_token("tok_2", 300.0)
    await store.touch_api_token("tok_2", 250.0)  # never lowers it
    assert (await store.get_api_token("h-tok_2")).last_used_at == 300.0


async def test_last_logins_per_tenant_never_move_back(store) -> None:
    await store.create_tenant(tenant("t1"))
    await store.create_tenant(tenant("t2"))
    await store.create_agent(agent("a1", "t1"))
    await store.create_agent(agent("a2", "t1"))
    await store.create_agent(agent("b1", "t2"))
    assert await store.last_logins("t1") == {}
    await store.record_login("a1", 500.0)
    await store.record_login("a1", 400.0)  # an older login never overwrites a newer one
    await store.record_login("b1", 600.0)
    assert await store.last_logins("t1") == {"a1": 500.0}
    await store.record_login("a1", 700.0)
    assert await store.last_logins("t1") == {"a1": 700.0}
    assert await store.last_logins("t2") == {"b1": 600.0}
