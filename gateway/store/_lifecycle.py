# ruff: noqa: S608
# (S608: SQL text here is built only from constant column lists and placeholders.)
"""SQL of data lifecycle (issue 15): retention of a tenant's secondary data and signed
destruction reports, shared by both store backends (written once in SQLite's spelling,
rendered per engine by :mod:`gateway.store.sql`)."""

from __future__ import annotations

from typing import Any

from gateway.store.base import LifecycleCutoffs, StoredReport

IDLE_CHATS = (
    "SELECT c.id FROM chats c WHERE c.tenant_id = ? AND c.state IN ('queued', 'active')"
    " AND NOT c.erased AND COALESCE((SELECT MAX(m.ts) FROM messages m"
    " WHERE m.chat_id = c.id), c.created_at) < ? ORDER BY c.created_at, c.id LIMIT ?"
)
"""Open chats of a tenant whose last message (or creation) is before the cutoff."""


def _some(table: str, where: str) -> str:
    """Delete at most ``?`` rows of ``table`` matching ``where`` (args: those of ``where``,
    then the bound)."""
    return f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {where} LIMIT ?)"


PURGE: tuple[tuple[str, str], ...] = (
    # each found through its own index (0001 and 0023), not by reading the tenant's rows
    ("flags", _some("policy_flags", "tenant_id = ? AND created_at < ?")),
    (
        "delivered_outbox",
        _some("outbox", "tenant_id = ? AND state = 'delivered' AND delivered_at < ?"),
    ),
    ("dead_letters", _some("outbox", "tenant_id = ? AND state = 'dead' AND created_at < ?")),
)
"""Per class: the statement deleting at most a batch of a tenant's rows older than its
cutoff (args: tenant, cutoff, batch)."""


def cutoff(name: str, c: LifecycleCutoffs) -> float | None:
    """The cutoff of class ``name`` (None: the class is kept)."""
    return {
        "flags": c.flags_before,
        "delivered_outbox": c.delivered_before,
        "dead_letters": c.dead_before,
    }[name]


REPORT_COLS = "id, tenant_id, kind, created_at, body, signature, signer"
INSERT_REPORT = f"INSERT INTO destruction_reports ({REPORT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
REPORT_BY_ID = f"SELECT {REPORT_COLS} FROM destruction_reports WHERE id = ?"
REPORTS_OF_TENANT = (
    f"SELECT {REPORT_COLS} FROM destruction_reports WHERE tenant_id = ? AND created_at < ?"
    " ORDER BY created_at DESC, id DESC LIMIT ?"
)


def report_params(r: StoredReport) -> tuple[Any, ...]:
    """Arguments of :data:`INSERT_REPORT`."""
    return (r.id, r.tenant_id, r.kind, r.created_at, r.body, r.signature, r.signer)


def report(row: Any) -> StoredReport:
    """A stored report from its row."""
    return StoredReport(
        id=str(row["id"]),
        tenant_id=str(row["tenant_id"]),
        kind=row["kind"],
        created_at=float(row["created_at"]),
        body=str(row["body"]),
        signature=str(row["signature"]),
        signer=str(row["signer"]),
    )


INSERT_CUSTOMER_KEY = (
    "INSERT INTO customer_keys (tenant_id, key, chat_id) VALUES (?, ?, ?)"
    " ON CONFLICT (tenant_id, key, chat_id) DO NOTHING"
)
CUSTOMER_KEYS_OF_CHAT = "SELECT key FROM customer_keys WHERE chat_id = ? ORDER BY key"
CHAT_BY_RESUME_HASH = (
    "SELECT id FROM chats WHERE tenant_id = ? AND resume_token_hash = ? AND NOT erased"
)
DELETE_CUSTOMER_KEYS = "DELETE FROM customer_keys WHERE chat_id = ?"


def chats_of_customer(n: int) -> str:
    """A tenant's chats stored under any of ``n`` customer keys (n > 0)."""
    return (
        "SELECT DISTINCT k.chat_id FROM customer_keys k JOIN chats c ON c.id = k.chat_id"
        f" WHERE k.tenant_id = ? AND k.key IN ({', '.join('?' * n)}) AND NOT c.erased"
        " ORDER BY k.chat_id"
    )
