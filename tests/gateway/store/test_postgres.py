"""PostgreSQL-only behaviour: concurrent node start-up, TRUNCATE, leases across pools, group
commit of appends."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from structlog.testing import capture_logs

from gateway.store import AuditEvent, postgres
from gateway.store.migrate import latest_version
from gateway.store.postgres import APPENDS_IN_FLIGHT, PostgresStore
from tests.gateway.store.helpers import msg, setup_chat

pytestmark = pytest.mark.services


async def test_concurrent_node_startup_migrates_once(postgres_dsn: str) -> None:
    stores = [PostgresStore(postgres_dsn, max_size=2) for _ in range(6)]
    try:
        await asyncio.gather(*(s.open() for s in stores))
        versions = await asyncio.gather(*(s.schema_version() for s in stores))
        assert set(versions) == {latest_version("postgres")}
        conn = await asyncpg.connect(postgres_dsn)
        try:
            rows = await conn.fetch("SELECT version FROM schema_version ORDER BY version")
        finally:
            await conn.close()
        assert [r["version"] for r in rows] == list(range(1, latest_version("postgres") + 1))
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_audit_truncate_refused(postgres_dsn: str) -> None:
    store = PostgresStore(postgres_dsn)
    await store.open()
    try:
        await store.append_audit(AuditEvent(ts=1.0, action="login"))
        conn = await asyncpg.connect(postgres_dsn)
        try:
            with pytest.raises(asyncpg.PostgresError, match="append-only"):
                await conn.execute("TRUNCATE audit_log")
        finally:
            await conn.close()
        assert len(await store.query_audit()) == 1
    finally:
        await store.close()


async def test_jsonb_and_bytea_types(postgres_dsn: str) -> None:
    store = PostgresStore(postgres_dsn)
    await store.open()
    try:
        conn = await asyncpg.connect(postgres_dsn)
        try:
            rows = await conn.fetch(
                "SELECT table_name, column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = 'public'"
            )
        finally:
            await conn.close()
        types = {(r["table_name"], r["column_name"]): r["data_type"] for r in rows}
        for col in [
            ("tenants", "settings"),
            ("tenants", "allowed_origins"),
            ("audit_log", "details"),
            ("plugin_configs", "config"),
            ("messages", "policy"),
            ("policy_flags", "kinds"),
        ]:
            assert types[col] == "jsonb", col
        for col in [
            ("messages", "body_sealed"),
            ("chat_keys", "wrapped_key"),
            ("outbox", "payload_sealed"),
        ]:
            assert types[col] == "bytea", col
        for col in [
            ("tenants", "frozen"),
            ("agents", "disabled"),
            ("chats", "verified"),
            ("plugin_configs", "enabled"),
        ]:
            assert types[col] == "boolean", col
    finally:
        await store.close()


async def test_appends_arriving_together_share_a_transaction(postgres_dsn: str) -> None:
    """Group commit: 30 appends asked for at once take a few transactions, not 30, and
    stay gap-free per chat (the store's contract tests check the outcomes in detail)."""
    store = PostgresStore(postgres_dsn)
    await store.open()
    try:
        for cid in ("c1", "c2", "c3"):
            await setup_chat(store, cid)
        results = await asyncio.gather(
            *(store.append_message(msg(f"m{i}", chat_id=f"c{i % 3 + 1}")) for i in range(30))
        )
        assert store._appends.calls <= APPENDS_IN_FLIGHT  # transactions sent
        for cid in ("c1", "c2", "c3"):
            seqs = sorted(r.message.seq for r in results if r.message.chat_id == cid)
            assert seqs == list(range(1, 11))
        # alone, an append still goes at once, in a transaction of its own
        calls = store._appends.calls
        assert (await store.append_message(msg("late", chat_id="c1"))).message.seq == 11
        assert store._appends.calls == calls + 1
    finally:
        await store.close()


async def test_failed_batch_logs_one_line_and_retries_each_append(postgres_dsn: str) -> None:
    """A batch that fails as a whole is named in one log line (its size and the error's
    type, never a message's content) and then each append is tried on its own."""
    store = PostgresStore(postgres_dsn)
    await store.open()
    try:
        await setup_chat(store)

        def broken(_stored: object) -> list:
            raise RuntimeError("secret 4111111111111111")

        with capture_logs() as logs:
            good, bad = await asyncio.gather(
                store.append_message(msg("m1")),
                store.append_message(msg("m2"), broken),
                return_exceptions=True,
            )
        failed = [entry for entry in logs if entry["event"] == "store.append_batch_failed"]
        assert failed == [
            {
                "event": "store.append_batch_failed",
                "size": 2,
                "error": "RuntimeError",
                "log_level": "warning",
            }
        ]
        assert "4111" not in repr(logs)
        assert good.message.seq == 1 and isinstance(bad, RuntimeError)
    finally:
        await store.close()


async def test_pooled_connection_goes_back_without_a_reset_round_trip(
    postgres_dsn: str,
) -> None:
    """The pool does not send asyncpg's reset statement after every store call (the store
    leaves no session state), and a transaction left open is still rolled back."""
    store = PostgresStore(postgres_dsn, max_size=2)
    await store.open()
    watcher = await asyncpg.connect(postgres_dsn)
    try:
        await setup_chat(store)
        assert (await store.get_chat("c1")) is not None
        last_statements = await watcher.fetch(
            "SELECT query FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert last_statements
        assert not any("RESET ALL" in row["query"] for row in last_statements)
        async with store.pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            await conn.execute("UPDATE chats SET last_seq = 99 WHERE id = 'c1'")
        async with store.pool.acquire() as conn:
            assert not conn.is_in_transaction()
        assert (await store.get_chat("c1")).last_seq == 0
    finally:
        await watcher.close()
        await store.close()


async def test_a_resend_racing_its_first_copy_is_found_on_the_retry(postgres_dsn: str) -> None:
    """A batch looks its message ids up before it locks its chats. A resend whose first
    copy commits in between is missed by the lookup; the write then meets the unique key,
    and the retry append by append returns the stored message: nothing is stored twice."""
    store = PostgresStore(postgres_dsn)
    await store.open()
    first_copy = await asyncpg.connect(postgres_dsn)
    try:
        await setup_chat(store)
        tx = first_copy.transaction()
        await tx.start()
        await first_copy.execute("UPDATE chats SET last_seq = 1 WHERE id = 'c1'")
        await first_copy.execute(
            "INSERT INTO messages (chat_id, seq, msg_id, sender, ts, body_sealed)"
            " VALUES ('c1', 1, 'm1', 'customer', 1.0, '\\x01')"
        )
        with capture_logs() as logs:
            appends = asyncio.gather(
                store.append_message(msg("m1")), store.append_message(msg("m2"))
            )
            for _ in range(500):  # until the batch waits for the chat's row lock
                waiting = await first_copy.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
                if waiting:
                    break
                await asyncio.sleep(0.01)
            assert waiting, "the batch never waited for the lock"
            await tx.commit()
            resent, second = await appends
        assert resent.duplicate and resent.message.seq == 1
        assert resent.message.body_sealed == b"\x01"
        assert not second.duplicate and second.message.seq == 2
        assert [entry["event"] for entry in logs].count("store.append_batch_failed") == 1
        assert [m.msg_id for m in await store.messages_after("c1", 0)] == ["m1", "m2"]
    finally:
        await first_copy.close()
        await store.close()


async def test_a_chats_later_append_waits_for_the_batch_holding_its_earlier_one(
    postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With several append transactions at once (``APPENDS_IN_FLIGHT`` > 1, as it was),
    a chat's second append in a second transaction could lock the chat first and take the
    earlier seq: here the first transaction waits for another chat's row lock (c0, locked
    before c1 in id order) while holding c1's append. The second append must wait for it
    instead of overtaking (the group commit's ``key``)."""
    monkeypatch.setattr(postgres, "APPENDS_IN_FLIGHT", 4)
    store = PostgresStore(postgres_dsn)
    await store.open()
    holder = await asyncpg.connect(postgres_dsn)
    try:
        for cid in ("c0", "c1"):
            await setup_chat(store, cid)
        tx = holder.transaction()
        await tx.start()
        await holder.execute("SELECT 1 FROM chats WHERE id = 'c0' FOR UPDATE")
        first = store.queue_append(msg("x", chat_id="c0")), store.queue_append(msg("a"))
        batch = asyncio.gather(*first)
        for _ in range(500):  # until the first transaction waits for c0's lock
            waiting = await holder.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if waiting:
                break
            await asyncio.sleep(0.01)
        assert waiting, "the first transaction never waited for the lock"
        later = asyncio.ensure_future(store.queue_append(msg("b")))
        done, _ = await asyncio.wait([later], timeout=0.5)
        assert not done, "the later append was stored before the earlier one"
        await tx.commit()
        (_, a), b = await batch, await later
        assert (a.message.seq, b.message.seq) == (1, 2)
        assert [m.msg_id for m in await store.messages_after("c1", 0)] == ["a", "b"]
    finally:
        await holder.close()
        await store.close()
