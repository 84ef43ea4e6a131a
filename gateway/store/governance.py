# ruff: noqa: S608
# (S608: SQL text is built only from constant column lists and placeholders.)
"""Governance tables (audit chain, checkpoints, alerts, incidents, forced password resets,
approvals), written once for both engines.

A mixin of :class:`gateway.store.sqlstore.SqlStore`, kept in its own module so the
governance storage reads as one piece. Appends to one audit chain never fork: on
PostgreSQL ``SELECT ... FOR UPDATE`` on the chain's head row is held until the row and
the new head commit together (a second node's append waits, then reads the new head); on
SQLite every write runs on the store's single writer inside ``BEGIN IMMEDIATE``, which
also serialises processes sharing the file.
"""

from __future__ import annotations

import abc
from typing import Any

from gateway.store import _rows
from gateway.store._rows import (
    ALERT_COLS,
    AUDIT_COLS,
    CHECKPOINT_COLS,
    GRANT_COLS,
    INCIDENT_COLS,
    INCIDENT_EVENT_COLS,
)
from gateway.store.base import (
    AccessGrant,
    Alert,
    AuditCheckpoint,
    AuditEvent,
    AuditSeal,
    Incident,
    IncidentEvent,
)
from gateway.store.sql import (
    Dialect,
    Json,
    Program,
    Query,
    placeholders,
    read_row,
    read_rows,
    write,
    write_many,
    write_row,
)

GENESIS = bytes(32)
AUDIT_PURGE_BATCH = 1000
"""Audit rows a retention purge deletes per transaction (see ``purge_audit``)."""


def append_chained(event: AuditEvent, seal: AuditSeal | None) -> Program[int]:
    """Insert one audit row (chained when ``seal`` is given); run as one transaction."""
    chain = seq = key_id = mac = None
    if seal is not None:
        chain = event.tenant_id or ""
        yield write(
            "INSERT INTO audit_chains (chain, seq, mac) VALUES (?, 0, ?)"
            " ON CONFLICT (chain) DO NOTHING",
            chain,
            GENESIS,
        )
        head = yield read_row("SELECT seq, mac FROM audit_chains WHERE chain = ?{lock}", chain)
        seq = int(head["seq"]) + 1
        event.chain, event.seq = chain, seq
        key_id, mac = seal(event, seq, bytes(head["mac"]))
        # The listeners (SIEM file and webhook) export the row as stored, MAC included.
        event.key_id, event.mac = key_id, mac
    row = yield write_row(
        "INSERT INTO audit_log (ts, action, tenant_id, actor, target, ip, details, chain, seq,"
        " key_id, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        event.ts,
        event.action,
        event.tenant_id,
        event.actor,
        event.target,
        event.ip,
        Json(dict(event.details)),
        chain,
        seq,
        key_id,
        mac,
    )
    if seal is not None:
        yield write("UPDATE audit_chains SET seq = ?, mac = ? WHERE chain = ?", seq, mac, chain)
    return int(row["id"])


class SqlGovernance(abc.ABC):
    """Governance storage over a SQL engine (mixed into ``SqlStore``)."""

    dialect: Dialect

    @abc.abstractmethod
    async def _query(self, query: Query) -> Any: ...

    async def _inserted_id(self, query: Query) -> int | None:
        row = await self._query(query)
        return None if row is None else int(row["id"])

    # -- audit chain ----------------------------------------------------------------
    async def audit_chain_rows(
        self, chain: str, *, after_id: int = 0, limit: int = 1000
    ) -> list[AuditEvent]:
        rows = await self._query(
            read_rows(
                f"SELECT {AUDIT_COLS} FROM audit_log WHERE id > ? AND (chain = ?"
                " OR (chain IS NULL AND COALESCE(tenant_id, '') = ?)) ORDER BY id LIMIT ?",
                after_id,
                chain,
                chain,
                limit,
            )
        )
        return [_rows.audit(r, self.dialect.load_json) for r in rows]

    async def audit_chain_heads(self) -> list[tuple[str, int, bytes]]:
        rows = await self._query(
            read_rows("SELECT chain, seq, mac FROM audit_chains ORDER BY chain")
        )
        return [(r["chain"], int(r["seq"]), bytes(r["mac"])) for r in rows]

    async def audit_last_before(self, chain: str, cutoff: float) -> AuditEvent | None:
        row = await self._query(
            read_row(
                f"SELECT {AUDIT_COLS} FROM audit_log WHERE chain = ? AND ts < ?"
                " ORDER BY seq DESC LIMIT 1",
                chain,
                cutoff,
            )
        )
        return None if row is None else _rows.audit(row, self.dialect.load_json)

    async def purge_audit(self, chain: str, upto_seq: int) -> int:
        # In batches, each its own transaction: months of a chain deleted at once (the first
        # run once retention is on) would hold SQLite's only writer -- every message
        # append -- for as long as it took.
        deleted = 0
        while True:
            n = int(
                await self._query(
                    write(
                        "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log"
                        " WHERE chain = ? AND seq <= ? ORDER BY seq LIMIT ?)",
                        chain,
                        upto_seq,
                        AUDIT_PURGE_BATCH,
                    )
                )
            )
            deleted += n
            if n < AUDIT_PURGE_BATCH:
                return deleted

    async def add_audit_checkpoint(self, checkpoint: AuditCheckpoint) -> bool:
        cp = checkpoint
        changed = await self._query(
            write(
                "INSERT INTO audit_checkpoints (chain, seq, mac, ts, signer, signature, reason)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (chain, seq) DO NOTHING",
                cp.chain,
                cp.seq,
                cp.mac,
                cp.ts,
                cp.signer,
                cp.signature,
                cp.reason,
            )
        )
        return bool(changed == 1)

    async def list_audit_checkpoints(self, chain: str) -> list[AuditCheckpoint]:
        rows = await self._query(
            read_rows(
                f"SELECT {CHECKPOINT_COLS} FROM audit_checkpoints WHERE chain = ? ORDER BY seq",
                chain,
            )
        )
        return [_rows.checkpoint(r) for r in rows]

    async def list_audit_keys(self) -> list[tuple[str, bytes, bool]]:
        rows = await self._query(
            read_rows("SELECT key_id, wrapped, is_current FROM audit_keys ORDER BY created_at")
        )
        return [(r["key_id"], bytes(r["wrapped"]), bool(r["is_current"])) for r in rows]

    async def add_audit_key(self, key_id: str, wrapped: bytes, now: float) -> bool:
        changed = await self._query(
            write(
                "INSERT INTO audit_keys (key_id, wrapped, is_current, created_at)"
                " VALUES (?, ?, TRUE, ?) ON CONFLICT DO NOTHING",
                key_id,
                wrapped,
                now,
            )
        )
        return bool(changed == 1)

    async def replace_audit_key(self, key_id: str, wrapped: bytes) -> None:
        await self._query(
            write("UPDATE audit_keys SET wrapped = ? WHERE key_id = ?", wrapped, key_id)
        )

    # -- alerts ---------------------------------------------------------------------
    async def add_alert(self, alert: Alert) -> int | None:
        a = alert
        return await self._inserted_id(
            write_row(
                "INSERT INTO alerts (tenant_id, rule, subject, dedup_key, severity, ts, count,"
                " details, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
                a.tenant_id,
                a.rule,
                a.subject,
                a.dedup_key,
                a.severity,
                a.ts,
                a.count,
                Json(dict(a.details)),
                a.state,
            )
        )

    async def list_alerts(
        self, tenant_id: str, *, states: tuple[str, ...] | None = None, limit: int = 200
    ) -> list[Alert]:
        sql = f"SELECT {ALERT_COLS} FROM alerts WHERE tenant_id = ?"
        args: list[Any] = [tenant_id]
        if states:
            sql += f" AND state IN ({placeholders(len(states))})"
            args.extend(states)
        rows = await self._query(read_rows(sql + " ORDER BY id DESC LIMIT ?", *args, limit))
        return [_rows.alert(r, self.dialect.load_json) for r in rows]

    async def get_alert(self, alert_id: int) -> Alert | None:
        row = await self._query(read_row(f"SELECT {ALERT_COLS} FROM alerts WHERE id = ?", alert_id))
        return None if row is None else _rows.alert(row, self.dialect.load_json)

    async def set_alert_state(
        self,
        alert_id: int,
        state: str,
        actor: str,
        now: float,
        incident_id: int | None = None,
    ) -> Alert | None:
        column = "acked" if state == "acknowledged" else "resolved"
        await self._query(
            write(
                f"UPDATE alerts SET state = ?, {column}_by = ?, {column}_at = ?,"
                " incident_id = COALESCE(?, incident_id) WHERE id = ?",
                state,
                actor,
                now,
                incident_id,
                alert_id,
            )
        )
        return await self.get_alert(alert_id)

    # -- incidents ------------------------------------------------------------------
    async def create_incident(self, incident: Incident) -> int:
        i = incident
        new_id = await self._inserted_id(
            write_row(
                "INSERT INTO incidents (tenant_id, severity, title, state, opened_by, opened_at)"
                " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                i.tenant_id,
                i.severity,
                i.title,
                i.state,
                i.opened_by,
                i.opened_at,
            )
        )
        assert new_id is not None  # a plain INSERT ... RETURNING always returns its row
        return new_id

    async def get_incident(self, incident_id: int) -> Incident | None:
        row = await self._query(
            read_row(f"SELECT {INCIDENT_COLS} FROM incidents WHERE id = ?", incident_id)
        )
        return None if row is None else _rows.incident(row)

    async def list_incidents(self, tenant_id: str, limit: int = 50) -> list[Incident]:
        rows = await self._query(
            read_rows(
                f"SELECT {INCIDENT_COLS} FROM incidents WHERE tenant_id = ?"
                " ORDER BY id DESC LIMIT ?",
                tenant_id,
                limit,
            )
        )
        return [_rows.incident(r) for r in rows]

    async def close_incident(self, incident_id: int, now: float) -> None:
        await self._query(
            write(
                "UPDATE incidents SET state = 'closed', closed_at = ?"
                " WHERE id = ? AND state = 'open'",
                now,
                incident_id,
            )
        )

    async def add_incident_event(self, event: IncidentEvent) -> int:
        e = event
        new_id = await self._inserted_id(
            write_row(
                "INSERT INTO incident_events (incident_id, ts, actor, action, details)"
                " VALUES (?, ?, ?, ?, ?) RETURNING id",
                e.incident_id,
                e.ts,
                e.actor,
                e.action,
                Json(dict(e.details)),
            )
        )
        assert new_id is not None  # a plain INSERT ... RETURNING always returns its row
        return new_id

    async def list_incident_events(self, incident_id: int) -> list[IncidentEvent]:
        rows = await self._query(
            read_rows(
                f"SELECT {INCIDENT_EVENT_COLS} FROM incident_events WHERE incident_id = ?"
                " ORDER BY id",
                incident_id,
            )
        )
        return [_rows.incident_event(r, self.dialect.load_json) for r in rows]

    # -- forced password resets -----------------------------------------------------
    async def force_password_resets(self, agent_ids: list[str], actor: str, now: float) -> int:
        await self._query(
            write_many(
                "INSERT INTO password_resets_forced (agent_id, forced_at, forced_by)"
                " VALUES (?, ?, ?) ON CONFLICT (agent_id) DO NOTHING",
                [(a, now, actor) for a in agent_ids],
            )
        )
        return len(agent_ids)

    async def password_reset_forced(self, agent_id: str) -> bool:
        row = await self._query(
            read_row("SELECT 1 AS forced FROM password_resets_forced WHERE agent_id = ?", agent_id)
        )
        return row is not None

    async def clear_forced_password_reset(self, agent_id: str) -> None:
        await self._query(write("DELETE FROM password_resets_forced WHERE agent_id = ?", agent_id))

    # -- approvals ------------------------------------------------------------------
    async def add_grant(self, grant: AccessGrant) -> int:
        g = grant
        new_id = await self._inserted_id(
            write_row(
                "INSERT INTO access_grants (tenant_id, requester, action, target, reason, state,"
                " approver, created_at, decided_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                g.tenant_id,
                g.requester,
                g.action,
                g.target,
                g.reason,
                g.state,
                g.approver,
                g.created_at,
                g.decided_at,
                g.expires_at,
            )
        )
        assert new_id is not None  # a plain INSERT ... RETURNING always returns its row
        return new_id

    async def get_grant(self, grant_id: int) -> AccessGrant | None:
        row = await self._query(
            read_row(f"SELECT {GRANT_COLS} FROM access_grants WHERE id = ?", grant_id)
        )
        return None if row is None else _rows.grant(row)

    async def decide_grant(
        self, grant_id: int, *, approved: bool, approver: str, now: float, expires_at: float | None
    ) -> bool:
        changed = await self._query(
            write(
                "UPDATE access_grants SET state = ?, approver = ?, decided_at = ?,"
                " expires_at = ? WHERE id = ? AND state = 'pending'",
                "approved" if approved else "denied",
                approver,
                now,
                expires_at,
                grant_id,
            )
        )
        return bool(changed == 1)

    async def list_grants(
        self, tenant_id: str, *, state: str | None = None, limit: int = 100
    ) -> list[AccessGrant]:
        sql = f"SELECT {GRANT_COLS} FROM access_grants WHERE tenant_id = ?"
        args: list[Any] = [tenant_id]
        if state:
            sql += " AND state = ?"
            args.append(state)
        rows = await self._query(read_rows(sql + " ORDER BY id DESC LIMIT ?", *args, limit))
        return [_rows.grant(r) for r in rows]

    async def live_grant(
        self, tenant_id: str, requester: str, action: str, target: str, now: float
    ) -> AccessGrant | None:
        row = await self._query(
            read_row(
                f"SELECT {GRANT_COLS} FROM access_grants WHERE tenant_id = ? AND requester = ?"
                " AND action = ? AND target = ? AND state = 'approved' AND expires_at > ?"
                " ORDER BY id DESC LIMIT 1",
                tenant_id,
                requester,
                action,
                target,
                now,
            )
        )
        return None if row is None else _rows.grant(row)
