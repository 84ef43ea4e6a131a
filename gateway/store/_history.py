# ruff: noqa: S608
# (S608: SQL text here is built only from constant fragments and placeholders; every value
# is a bound parameter.)
"""SQL for chat history: closed-chat listing, the keyed-hash search index and a
customer's other chats (issue 16 item 5), written once in SQLite's spelling for both engines."""

from __future__ import annotations

from typing import Any

from gateway.store._rows import CHAT_COLS
from gateway.store.base import HistoryQuery
from gateway.store.sql import placeholders

INSERT_INDEX_ROW = (
    "INSERT INTO chat_search_tokens (tenant_id, chat_id, token_hash) VALUES (?, ?, ?)"
    " ON CONFLICT (chat_id, token_hash) DO NOTHING"
)
ERASE = ("DELETE FROM chat_search_tokens WHERE chat_id = ?",)
PENDING_INDEX = (
    f"SELECT {CHAT_COLS} FROM chats"
    " WHERE state = 'closed' AND NOT search_indexed AND NOT erased"
    " ORDER BY closed_at, id LIMIT ?"
)
MARK_INDEXED = (
    "UPDATE chats SET search_indexed = TRUE"
    " WHERE id = ? AND state = 'closed' AND NOT erased RETURNING tenant_id"
)


def _filters(q: HistoryQuery) -> tuple[str, list[Any]]:
    """WHERE clause (after ``FROM chats c``) and its arguments for ``q``, without paging."""
    sql = " WHERE c.tenant_id = ? AND c.state = 'closed' AND NOT c.erased"
    args: list[Any] = [q.tenant_id]
    if q.closed_from is not None:
        sql += " AND c.closed_at >= ?"
        args.append(q.closed_from)
    if q.closed_to is not None:
        sql += " AND c.closed_at < ?"
        args.append(q.closed_to)
    if q.queue is not None:
        sql += " AND c.queue = ?"
        args.append(q.queue)
    if q.agent_id is not None:
        sql += " AND c.assigned_agent_id = ?"
        args.append(q.agent_id)
    if q.csat is not None:
        sql += " AND c.csat = ?"
        args.append(q.csat)
    if q.customer_of is not None:
        # The same customer: chats sharing a customer key (verified sub or e-mail, 0008).
        sql += (
            " AND c.id IN (SELECT k.chat_id FROM customer_keys k WHERE k.tenant_id = ?"
            " AND k.key IN (SELECT key FROM customer_keys WHERE chat_id = ?))"
        )
        args += [q.tenant_id, q.customer_of]
    if q.exclude_chat is not None:
        sql += " AND c.id <> ?"
        args.append(q.exclude_chat)
    if q.token_hashes:
        # Chats holding every token: one grouped sub-select over the lookup index.
        sql += (
            " AND c.id IN (SELECT chat_id FROM chat_search_tokens WHERE tenant_id = ?"
            f" AND token_hash IN ({placeholders(len(q.token_hashes))})"
            " GROUP BY chat_id HAVING COUNT(*) = ?)"
        )
        args += [q.tenant_id, *q.token_hashes, len(q.token_hashes)]
    return sql, args


def list_query(q: HistoryQuery) -> tuple[str, list[Any]]:
    """Closed chats matching ``q``, newest close first, keyset-paged by (closed_at, id)."""
    where, args = _filters(q)
    cols = ", ".join(f"c.{c.strip()}" for c in CHAT_COLS.split(","))
    if q.before is not None:
        where += " AND (c.closed_at < ? OR (c.closed_at = ? AND c.id < ?))"
        args += [q.before[0], q.before[0], q.before[1]]
    return (
        f"SELECT {cols} FROM chats c{where} ORDER BY c.closed_at DESC, c.id DESC LIMIT ?",
        [*args, max(0, q.limit)],
    )


def csat_query(q: HistoryQuery) -> tuple[str, list[Any]]:
    """Per-agent CSAT count and average over every chat matching ``q`` (no paging)."""
    where, args = _filters(q)
    return (
        "SELECT c.assigned_agent_id AS agent_id, COUNT(c.csat) AS rated, AVG(c.csat) AS average"
        f" FROM chats c{where} AND c.csat IS NOT NULL AND c.assigned_agent_id IS NOT NULL"
        " GROUP BY c.assigned_agent_id ORDER BY c.assigned_agent_id",
        args,
    )
