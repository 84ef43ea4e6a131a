"""A chat row read by position (``_rows.chat``) gives back every field where it was
written: each field below holds a value no other field holds."""

from __future__ import annotations

from gateway.store import Store
from gateway.store.base import Chat
from tests.gateway.store.helpers import agent, setup_chat


async def test_every_chat_field_comes_back_where_it_was_written(store: Store) -> None:
    await setup_chat(store, "other")  # the tenant
    await store.create_agent(agent("a1"))
    written = Chat(
        id="c-every",
        tenant_id="t1",
        state="active",
        created_at=101.0,
        queue="billing",
        assigned_agent_id="a1",
        resume_token_hash="resume-hash",
        identity_sealed=b"identity",
        verified=True,
        profile_sealed=b"profile",
        last_seq=7,
        closed_at=102.0,
        close_reason="reason",
        csat=4,
        accepted_at=103.0,
        consent_sealed=b"consent",
        first_response_at=104.0,
        transfers=2,
        rated_at=105.0,
        csat_comment_sealed=b"comment",
        sla_alerted=3,
        mode="e2e",
        e2e_epoch=5,
        queued_at=106.0,
        assigned_at=107.0,
        answered_at=108.0,
    )
    await store.create_chat(written, b"wrapped-key")

    assert await store.get_chat("c-every") == written
    listing = await store.list_queue("t1", waiting_per_queue=10)
    assert [c for c in listing.chats if c.id == "c-every"] == [written]
