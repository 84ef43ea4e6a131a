# ruff: noqa: S608
# (S608: SQL text is built only from constant column lists and placeholders.)
"""PostgreSQL half of the governance tables (audit chain, checkpoints, alerts, incidents).

A mixin of :class:`gateway.store.postgres.PostgresStore`. Appends to one audit chain are
serialised across nodes by ``SELECT ... FOR UPDATE`` on the chain's head row, held until
the row and the new head commit together (READ COMMITTED): a second node's append waits,
then reads the new head, so the chain never forks.
"""

from __future__ import annotations

from typing import Any

import asyncpg

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

GENESIS = bytes(32)


def _ident(value: Any) -> Any:
    return value


async def append_chained(
    conn: asyncpg.Connection, event: AuditEvent, seal: AuditSeal | None
) -> int:
    """Insert one audit row (chained when ``seal`` is given); call inside a transaction."""
    chain = seq = key_id = mac = None
    if seal is not None:
        chain = event.tenant_id or ""
        await conn.execute(
            "INSERT INTO audit_chains (chain, seq, mac) VALUES ($1, 0, $2)"
            " ON CONFLICT (chain) DO NOTHING",
            chain,
            GENESIS,
        )
        head = await conn.fetchrow(
            "SELECT seq, mac FROM audit_chains WHERE chain = $1 FOR UPDATE", chain
        )
        seq = int(head["seq"]) + 1
        event.chain, event.seq = chain, seq
        key_id, mac = seal(event, seq, bytes(head["mac"]))
    row_id = await conn.fetchval(
        "INSERT INTO audit_log (ts, action, tenant_id, actor, target, ip, details, chain, seq,"
        " key_id, mac) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        event.ts,
        event.action,
        event.tenant_id,
        event.actor,
        event.target,
        event.ip,
        dict(event.details),
        chain,
        seq,
        key_id,
        mac,
    )
    if seal is not None:
        await conn.execute(
            "UPDATE audit_chains SET seq = $1, mac = $2 WHERE chain = $3", seq, mac, chain
        )
    return int(row_id)


class PostgresGovernance:
    """Governance storage on PostgreSQL (mixed into ``PostgresStore``)."""

    pool: asyncpg.Pool

    # -- audit chain ----------------------------------------------------------------
    async def audit_chain_rows(
        self, chain: str, *, after_id: int = 0, limit: int = 1000
    ) -> list[AuditEvent]:
        rows = await self.pool.fetch(
            f"SELECT {AUDIT_COLS} FROM audit_log WHERE id > $1 AND (chain = $2"
            " OR (chain IS NULL AND COALESCE(tenant_id, '') = $2)) ORDER BY id LIMIT $3",
            after_id,
            chain,
            limit,
        )
        return [_rows.audit(r, _ident) for r in rows]

    async def audit_chain_heads(self) -> list[tuple[str, int, bytes]]:
        rows = await self.pool.fetch("SELECT chain, seq, mac FROM audit_chains ORDER BY chain")
        return [(r["chain"], int(r["seq"]), bytes(r["mac"])) for r in rows]

    async def audit_last_before(self, chain: str, cutoff: float) -> AuditEvent | None:
        row = await self.pool.fetchrow(
            f"SELECT {AUDIT_COLS} FROM audit_log WHERE chain = $1 AND ts < $2"
            " ORDER BY seq DESC LIMIT 1",
            chain,
            cutoff,
        )
        return None if row is None else _rows.audit(row, _ident)

    async def purge_audit(self, chain: str, upto_seq: int) -> int:
        status = await self.pool.execute(
            "DELETE FROM audit_log WHERE chain = $1 AND seq <= $2", chain, upto_seq
        )
        return int(status.split()[-1])

    async def add_audit_checkpoint(self, checkpoint: AuditCheckpoint) -> bool:
        cp = checkpoint
        status = await self.pool.execute(
            "INSERT INTO audit_checkpoints (chain, seq, mac, ts, signer, signature, reason)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (chain, seq) DO NOTHING",
            cp.chain,
            cp.seq,
            cp.mac,
            cp.ts,
            cp.signer,
            cp.signature,
            cp.reason,
        )
        return status.endswith(" 1")

    async def list_audit_checkpoints(self, chain: str) -> list[AuditCheckpoint]:
        rows = await self.pool.fetch(
            f"SELECT {CHECKPOINT_COLS} FROM audit_checkpoints WHERE chain = $1 ORDER BY seq", chain
        )
        return [_rows.checkpoint(r) for r in rows]

    async def list_audit_keys(self) -> list[tuple[str, bytes, bool]]:
        rows = await self.pool.fetch(
            "SELECT key_id, wrapped, is_current FROM audit_keys ORDER BY created_at"
        )
        return [(r["key_id"], bytes(r["wrapped"]), bool(r["is_current"])) for r in rows]

    async def add_audit_key(self, key_id: str, wrapped: bytes, now: float) -> bool:
        status = await self.pool.execute(
            "INSERT INTO audit_keys (key_id, wrapped, is_current, created_at)"
            " VALUES ($1, $2, TRUE, $3) ON CONFLICT DO NOTHING",
            key_id,
            wrapped,
            now,
        )
        return status.endswith(" 1")

    async def replace_audit_key(self, key_id: str, wrapped: bytes) -> None:
        await self.pool.execute(
            "UPDATE audit_keys SET wrapped = $1 WHERE key_id = $2", wrapped, key_id
        )

    # -- alerts ---------------------------------------------------------------------
    async def add_alert(self, alert: Alert) -> int | None:
        a = alert
        value = await self.pool.fetchval(
            "INSERT INTO alerts (tenant_id, rule, subject, dedup_key, severity, ts, count,"
            " details, state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            " ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
            a.tenant_id,
            a.rule,
            a.subject,
            a.dedup_key,
            a.severity,
            a.ts,
            a.count,
            dict(a.details),
            a.state,
        )
        return None if value is None else int(value)

    async def list_alerts(
        self, tenant_id: str, *, states: tuple[str, ...] | None = None, limit: int = 200
    ) -> list[Alert]:
        if states:
            rows = await self.pool.fetch(
                f"SELECT {ALERT_COLS} FROM alerts WHERE tenant_id = $1 AND state = ANY($2)"
                " ORDER BY id DESC LIMIT $3",
                tenant_id,
                list(states),
                limit,
            )
        else:
            rows = await self.pool.fetch(
                f"SELECT {ALERT_COLS} FROM alerts WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2",
                tenant_id,
                limit,
            )
        return [_rows.alert(r, _ident) for r in rows]

    async def get_alert(self, alert_id: int) -> Alert | None:
        row = await self.pool.fetchrow(f"SELECT {ALERT_COLS} FROM alerts WHERE id = $1", alert_id)
        return None if row is None else _rows.alert(row, _ident)

    async def set_alert_state(
        self,
        alert_id: int,
        state: str,
        actor: str,
        now: float,
        incident_id: int | None = None,
    ) -> Alert | None:
        column = "acked" if state == "acknowledged" else "resolved"
        await self.pool.execute(
            f"UPDATE alerts SET state = $1, {column}_by = $2, {column}_at = $3,"
            " incident_id = COALESCE($4, incident_id) WHERE id = $5",
            state,
            actor,
            now,
            incident_id,
            alert_id,
        )
        return await self.get_alert(alert_id)

    # -- incidents ------------------------------------------------------------------
    async def create_incident(self, incident: Incident) -> int:
        i = incident
        return int(
            await self.pool.fetchval(
                "INSERT INTO incidents (tenant_id, severity, title, state, opened_by, opened_at)"
                " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                i.tenant_id,
                i.severity,
                i.title,
                i.state,
                i.opened_by,
                i.opened_at,
            )
        )

    async def get_incident(self, incident_id: int) -> Incident | None:
        row = await self.pool.fetchrow(
            f"SELECT {INCIDENT_COLS} FROM incidents WHERE id = $1", incident_id
        )
        return None if row is None else _rows.incident(row)

    async def list_incidents(self, tenant_id: str, limit: int = 50) -> list[Incident]:
        rows = await self.pool.fetch(
            f"SELECT {INCIDENT_COLS} FROM incidents WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2",
            tenant_id,
            limit,
        )
        return [_rows.incident(r) for r in rows]

    async def close_incident(self, incident_id: int, now: float) -> None:
        await self.pool.execute(
            "UPDATE incidents SET state = 'closed', closed_at = $1"
            " WHERE id = $2 AND state = 'open'",
            now,
            incident_id,
        )

    async def add_incident_event(self, event: IncidentEvent) -> int:
        e = event
        return int(
            await self.pool.fetchval(
                "INSERT INTO incident_events (incident_id, ts, actor, action, details)"
                " VALUES ($1, $2, $3, $4, $5) RETURNING id",
                e.incident_id,
                e.ts,
                e.actor,
                e.action,
                dict(e.details),
            )
        )

    async def list_incident_events(self, incident_id: int) -> list[IncidentEvent]:
        rows = await self.pool.fetch(
            f"SELECT {INCIDENT_EVENT_COLS} FROM incident_events WHERE incident_id = $1 ORDER BY id",
            incident_id,
        )
        return [_rows.incident_event(r, _ident) for r in rows]

    # -- forced password resets -----------------------------------------------------
    async def force_password_resets(self, agent_ids: list[str], actor: str, now: float) -> int:
        await self.pool.executemany(
            "INSERT INTO password_resets_forced (agent_id, forced_at, forced_by)"
            " VALUES ($1, $2, $3) ON CONFLICT (agent_id) DO NOTHING",
            [(a, now, actor) for a in agent_ids],
        )
        return len(agent_ids)

    async def password_reset_forced(self, agent_id: str) -> bool:
        return (
            await self.pool.fetchval(
                "SELECT 1 FROM password_resets_forced WHERE agent_id = $1", agent_id
            )
            is not None
        )

    async def clear_forced_password_reset(self, agent_id: str) -> None:
        await self.pool.execute("DELETE FROM password_resets_forced WHERE agent_id = $1", agent_id)

    # -- approvals ------------------------------------------------------------------
    async def add_grant(self, grant: AccessGrant) -> int:
        g = grant
        return int(
            await self.pool.fetchval(
                "INSERT INTO access_grants (tenant_id, requester, action, target, reason, state,"
                " approver, created_at, decided_at, expires_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
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

    async def get_grant(self, grant_id: int) -> AccessGrant | None:
        row = await self.pool.fetchrow(
            f"SELECT {GRANT_COLS} FROM access_grants WHERE id = $1", grant_id
        )
        return None if row is None else _rows.grant(row)

    async def decide_grant(
        self, grant_id: int, *, approved: bool, approver: str, now: float, expires_at: float | None
    ) -> bool:
        status = await self.pool.execute(
            "UPDATE access_grants SET state = $1, approver = $2, decided_at = $3,"
            " expires_at = $4 WHERE id = $5 AND state = 'pending'",
            "approved" if approved else "denied",
            approver,
            now,
            expires_at,
            grant_id,
        )
        return status.endswith(" 1")

    async def list_grants(
        self, tenant_id: str, *, state: str | None = None, limit: int = 100
    ) -> list[AccessGrant]:
        if state:
            rows = await self.pool.fetch(
                f"SELECT {GRANT_COLS} FROM access_grants WHERE tenant_id = $1 AND state = $2"
                " ORDER BY id DESC LIMIT $3",
                tenant_id,
                state,
                limit,
            )
        else:
            rows = await self.pool.fetch(
                f"SELECT {GRANT_COLS} FROM access_grants WHERE tenant_id = $1"
                " ORDER BY id DESC LIMIT $2",
                tenant_id,
                limit,
            )
        return [_rows.grant(r) for r in rows]

    async def live_grant(
        self, tenant_id: str, requester: str, action: str, target: str, now: float
    ) -> AccessGrant | None:
        row = await self.pool.fetchrow(
            f"SELECT {GRANT_COLS} FROM access_grants WHERE tenant_id = $1 AND requester = $2"
            " AND action = $3 AND target = $4 AND state = 'approved' AND expires_at > $5"
            " ORDER BY id DESC LIMIT 1",
            tenant_id,
            requester,
            action,
            target,
            now,
        )
        return None if row is None else _rows.grant(row)
