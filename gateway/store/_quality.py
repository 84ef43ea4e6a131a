# ruff: noqa: S608
# (S608: SQL text here is built only from constant fragments and placeholders; every value
# is a bound parameter.)
"""SQL for service-quality facts (issue 15.4): the per-chat timestamps and counters the
report and the SLA watch read, written once in SQLite's spelling for both engines."""

from __future__ import annotations

from gateway.store._rows import Row
from gateway.store.base import QualityFacts

# The answer of the current assignment, and the chat's first response if it had none.
MARK_ANSWERED = (
    "UPDATE chats SET answered_at = ?, first_response_at = COALESCE(first_response_at, ?)"
    " WHERE id = ? AND answered_at IS NULL AND NOT erased RETURNING first_response_at"
)
COUNT_TRANSFER = "UPDATE chats SET transfers = transfers + 1 WHERE id = ? AND NOT erased"
# Once per chat: a rating recorded by the close itself (older rows) or earlier wins.
RATE = (
    "UPDATE chats SET csat = ?, rated_at = ?, csat_comment_sealed = ?"
    " WHERE id = ? AND state = 'closed' AND NOT erased AND rated_at IS NULL AND csat IS NULL"
)
MARK_SLA = "UPDATE chats SET sla_alerted = sla_alerted | ? WHERE id = ? AND (sla_alerted & ?) = 0"

_FACT_COLS = (
    "id, queue, state, assigned_agent_id, created_at, accepted_at, first_response_at,"
    " closed_at, transfers, csat, sla_alerted, queued_at, assigned_at, answered_at"
)
FACTS = (
    f"SELECT {_FACT_COLS} FROM chats"
    " WHERE tenant_id = ? AND created_at >= ? AND created_at < ?"
    " ORDER BY created_at, id LIMIT ?"
)
"""A tenant's chats created in [since, until), erased ones included (their facts hold no
personal data)."""

SLA_DUE = (
    f"SELECT {_FACT_COLS} FROM chats"
    " WHERE tenant_id = ? AND state IN ('queued', 'active') AND NOT erased AND ("
    "(state = 'queued' AND COALESCE(queued_at, created_at) <= ? AND (sla_alerted & 1) = 0)"
    " OR (state = 'active' AND (sla_alerted & 2) = 0 AND ("
    "(assigned_at IS NULL AND first_response_at IS NULL AND accepted_at <= ?)"
    " OR (assigned_at IS NOT NULL AND assigned_at <= ? AND answered_at IS NULL"
    " AND NOT COALESCE(first_response_at >= assigned_at, FALSE)))))"
    " ORDER BY created_at, id LIMIT ?"
)
"""Open chats past an SLA cutoff without its alert: waiting in a queue since before the
queue cutoff (since the open, or since a transfer sent it back: the queue bit is re-armed
then), or held by an agent since before the reply cutoff without an answer in that
assignment (each new assignment re-arms the reply bit). Rows no 0018 release assigned
(``assigned_at`` NULL) are timed from the first accept as before; a reply a previous
release recorded only as ``first_response_at`` still counts as the answer. Takes the
reply cutoff twice."""

REOPENED = (
    "SELECT DISTINCT a.chat_id AS chat_id FROM customer_keys a"
    " JOIN chats ca ON ca.id = a.chat_id"
    " JOIN customer_keys b ON b.tenant_id = a.tenant_id AND b.key = a.key"
    " AND b.chat_id <> a.chat_id"
    " JOIN chats cb ON cb.id = b.chat_id"
    " WHERE a.tenant_id = ? AND ca.created_at >= ? AND ca.created_at < ?"
    " AND ca.closed_at IS NOT NULL AND cb.created_at > ca.closed_at"
    " AND cb.created_at <= ca.closed_at + ?"
)
"""Closed chats created in [since, until) whose customer (same customer key: verified
sub or e-mail, 0008) opened another chat within the window after the close."""


def facts(r: Row) -> QualityFacts:
    """A row of :data:`FACTS` or :data:`SLA_DUE`."""
    return QualityFacts(
        chat_id=r["id"],
        queue=r["queue"],
        state=r["state"],
        agent_id=r["assigned_agent_id"],
        created_at=r["created_at"],
        accepted_at=r["accepted_at"],
        first_response_at=r["first_response_at"],
        closed_at=r["closed_at"],
        transfers=int(r["transfers"]),
        csat=r["csat"],
        sla_alerted=int(r["sla_alerted"]),
        queued_at=r["queued_at"],
        assigned_at=r["assigned_at"],
        answered_at=r["answered_at"],
    )
