"""PostgreSQL-only behaviour: concurrent node start-up, TRUNCATE, leases across pools."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from gateway.store import AuditEvent
from gateway.store.migrate import latest_version
from gateway.store.postgres import PostgresStore

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
