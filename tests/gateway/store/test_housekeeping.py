"""Housekeeping purge on SQLite and PostgreSQL, with an injected clock: ended sessions,
dead API tokens, dead invites and idle lockout rows go after their keep period, live ones stay.
Before, none of these tables was ever purged."""

from __future__ import annotations

from gateway.config import AuthConfig
from gateway.housekeeping import DAY, KEEP_DAYS, LOCKOUT_IDLE_DAYS, Housekeeping
from gateway.store.base import AgentSession, ApiToken, Invite, LockoutRecord
from tests.gateway.store.helpers import agent, tenant

NOW = 1_800_000_000.0
KEEP = KEEP_DAYS * DAY


def _session(name: str, **kw) -> AgentSession:
    return AgentSession(
        token_hash=name,
        agent_id="a1",
        tenant_id="t1",
        created_at=kw.pop("created_at", NOW - DAY),
        last_seen_at=kw.pop("last_seen_at", NOW - 60),
        **kw,
    )


def _token(tid: str, **kw) -> ApiToken:
    return ApiToken(
        id=tid,
        tenant_id="t1",
        owner_id="a1",
        name=tid,
        token_hash="h-" + tid,
        permissions=["audit_read"],
        created_at=NOW - 400 * DAY,
        expires_at=kw.pop("expires_at", NOW + DAY),
        **kw,
    )


def _invite(iid: str, **kw) -> Invite:
    return Invite(
        id=iid,
        tenant_id="t1",
        email=f"{iid}@example.com",
        display_name=iid,
        role="agent",
        token_hash="h-" + iid,
        created_by="a1",
        created_at=NOW - 400 * DAY,
        expires_at=kw.pop("expires_at", NOW + DAY),
        **kw,
    )


async def test_dead_rows_go_after_their_keep_period_live_ones_stay(store) -> None:
    auth = AuthConfig()
    await store.create_tenant(tenant("t1"))
    await store.create_agent(agent("a1", "t1"))
    sessions = {
        "live": _session("live"),
        "revoked-recently": _session("revoked-recently", revoked_at=NOW - KEEP + 60),
        "revoked-long-ago": _session("revoked-long-ago", revoked_at=NOW - KEEP - 60),
        "idle-long-ago": _session(
            "idle-long-ago", last_seen_at=NOW - auth.idle_timeout - KEEP - 60
        ),
        "too-old": _session(
            "too-old", created_at=NOW - auth.absolute_lifetime - KEEP - 60, last_seen_at=NOW - 60
        ),
    }
    for s in sessions.values():
        await store.create_session(s)
    tokens = {
        "live": _token("live"),
        "expired-recently": _token("expired-recently", expires_at=NOW - KEEP + 60),
        "expired-long-ago": _token("expired-long-ago", expires_at=NOW - KEEP - 60),
        "revoked-long-ago": _token("revoked-long-ago", revoked_at=NOW - KEEP - 60),
    }
    for t in tokens.values():
        await store.create_api_token(t)
    invites = {
        "pending": _invite("pending"),
        "used-recently": _invite("used-recently", used_at=NOW - KEEP + 60),
        "used-long-ago": _invite("used-long-ago", used_at=NOW - KEEP - 60),
        "revoked-long-ago": _invite("revoked-long-ago", revoked_at=NOW - KEEP - 60),
        "expired-recently": _invite("expired-recently", expires_at=NOW - KEEP + 60),
        "expired-long-ago": _invite("expired-long-ago", expires_at=NOW - KEEP - 60),
    }
    for i in invites.values():
        await store.create_invite(i)
    idle = NOW - LOCKOUT_IDLE_DAYS * DAY
    await store.put_lockout(LockoutRecord("recent", 3, NOW - 3600, 0.0))
    await store.put_lockout(LockoutRecord("idle", 5, idle - 60, 0.0))
    await store.put_lockout(LockoutRecord("still-locked", 9, idle - 60, NOW + 600))

    counts = await Housekeeping(store, auth, lambda: NOW).run_once()

    assert counts == {"sessions": 3, "api_tokens": 2, "lockouts": 1, "invites": 3}
    assert {i.id for i in await store.list_invites("t1")} == {
        "pending",
        "used-recently",
        "expired-recently",
    }
    for name in ("live", "revoked-recently"):
        assert await store.get_session(name) is not None, name
    for name in ("revoked-long-ago", "idle-long-ago", "too-old"):
        assert await store.get_session(name) is None, name
    assert {t.id for t in await store.list_api_tokens("t1")} == {"live", "expired-recently"}
    assert await store.get_lockout("recent") is not None
    assert await store.get_lockout("still-locked") is not None
    assert await store.get_lockout("idle") is None
    # a second run finds nothing more
    assert await Housekeeping(store, auth, lambda: NOW).run_once() == {
        "sessions": 0,
        "api_tokens": 0,
        "lockouts": 0,
        "invites": 0,
    }


async def test_the_retention_worker_runs_housekeeping_on_its_interval(store) -> None:
    import asyncio

    from gateway.config import RetentionConfig
    from gateway.retention import RetentionJob

    ran = asyncio.Event()

    class Recorder(Housekeeping):
        async def run_once(self) -> dict[str, int]:
            counts = await super().run_once()
            ran.set()
            return counts

    job = RetentionJob(
        store,
        chats=None,
        config=RetentionConfig(
            closed_chat_days=0,  # type: ignore[arg-type]
            interval_seconds=0.05,
        ),
        clock=lambda: NOW,
        housekeeping=Recorder(store, AuthConfig(), lambda: NOW),
    )
    await job.start()
    try:
        await asyncio.wait_for(ran.wait(), 10)
    finally:
        await job.stop()
