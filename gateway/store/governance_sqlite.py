# ruff: noqa: S608
# (S608: SQL text is built only from constant column lists and placeholders.)
"""SQLite half of the governance tables (audit chain, checkpoints, alerts, incidents).

A mixin of :class:`gateway.store.sqlite.SqliteStore`, kept in its own module so the
governance storage reads as one piece. Every write runs on the store's single writer
(``BEGIN IMMEDIATE``), which is also what serialises appends to an audit chain across
processes sharing the file.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

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

T = TypeVar("T")
GENESIS = bytes(32)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def append_chained(c: sqlite3.Connection, event: AuditEvent, seal: AuditSeal | None) -> int:
    """Insert one audit row (chained when ``seal`` is given) on the writer's connection."""
    chain = seq = key_id = mac = None
    if seal is not None:
        chain = event.tenant_id or ""
        c.execute(
            "INSERT INTO audit_chains (chain, seq, mac) VALUES (?, 0, ?)"
            " ON CONFLICT (chain) DO NOTHING",
            (chain, GENESIS),
        )
        head_seq, prev = c.execute(
            "SELECT seq, mac FROM audit_chains WHERE chain = ?", (chain,)
        ).fetchone()
        seq = int(head_seq) + 1
        event.chain, event.seq = chain, seq
        key_id, mac = seal(event, seq, bytes(prev))
    cur = c.execute(
        "INSERT INTO audit_log (ts, action, tenant_id, actor, target, ip, details, chain, seq,"
        " key_id, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            event.ts,
            event.action,
            event.tenant_id,
            event.actor,
            event.target,
            event.ip,
            _dumps(event.details),
            chain,
            seq,
            key_id,
            mac,
        ),
    )
    if seal is not None:
        c.execute("UPDATE audit_chains SET seq = ?, mac = ? WHERE chain = ?", (seq, mac, chain))
    return int(cur.lastrowid or 0)


class SqliteGovernance:
    """Governance storage on SQLite (mixed into ``SqliteStore``)."""

    _write: Callable[..., Any]
    _all: Callable[..., Any]

    async def _first(self, sql: str, params: Iterable[Any] = ()) -> Any:
        rows = await self._all(sql, params)
        return rows[0] if rows else None

    # -- audit chain ----------------------------------------------------------------
    async def audit_chain_rows(
        self, chain: str, *, after_id: int = 0, limit: int = 1000
    ) -> list[AuditEvent]:
        rows = await self._all(
            f"SELECT {AUDIT_COLS} FROM audit_log WHERE id > ? AND (chain = ?"
            " OR (chain IS NULL AND COALESCE(tenant_id, '') = ?)) ORDER BY id LIMIT ?",
            (after_id, chain, chain, limit),
        )
        return [_rows.audit(r, json.loads) for r in rows]

    async def audit_chain_heads(self) -> list[tuple[str, int, bytes]]:
        rows = await self._all("SELECT chain, seq, mac FROM audit_chains ORDER BY chain")
        return [(r["chain"], int(r["seq"]), bytes(r["mac"])) for r in rows]

    async def audit_last_before(self, chain: str, cutoff: float) -> AuditEvent | None:
        row = await self._first(
            f"SELECT {AUDIT_COLS} FROM audit_log WHERE chain = ? AND ts < ?"
            " ORDER BY seq DESC LIMIT 1",
            (chain, cutoff),
        )
        return None if row is None else _rows.audit(row, json.loads)

    async def purge_audit(self, chain: str, upto_seq: int) -> int:
        def fn(c: sqlite3.Connection) -> int:
            return c.execute(
                "DELETE FROM audit_log WHERE chain = ? AND seq <= ?", (chain, upto_seq)
            ).rowcount

        return int(await self._write(fn))

    async def add_audit_checkpoint(self, checkpoint: AuditCheckpoint) -> bool:
        cp = checkpoint

        def fn(c: sqlite3.Connection) -> bool:
            return (
                c.execute(
                    "INSERT INTO audit_checkpoints (chain, seq, mac, ts, signer, signature, reason)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (chain, seq) DO NOTHING",
                    (cp.chain, cp.seq, cp.mac, cp.ts, cp.signer, cp.signature, cp.reason),
                ).rowcount
                == 1
            )

        return bool(await self._write(fn))

    async def list_audit_checkpoints(self, chain: str) -> list[AuditCheckpoint]:
        rows = await self._all(
            f"SELECT {CHECKPOINT_COLS} FROM audit_checkpoints WHERE chain = ? ORDER BY seq",
            (chain,),
        )
        return [_rows.checkpoint(r) for r in rows]

    async def list_audit_keys(self) -> list[tuple[str, bytes, bool]]:
        rows = await self._all(
            "SELECT key_id, wrapped, is_current FROM audit_keys ORDER BY created_at"
        )
        return [(r["key_id"], bytes(r["wrapped"]), bool(r["is_current"])) for r in rows]

    async def add_audit_key(self, key_id: str, wrapped: bytes, now: float) -> bool:
        def fn(c: sqlite3.Connection) -> bool:
            return (
                c.execute(
                    "INSERT INTO audit_keys (key_id, wrapped, is_current, created_at)"
                    " VALUES (?, ?, 1, ?) ON CONFLICT DO NOTHING",
                    (key_id, wrapped, now),
                ).rowcount
                == 1
            )

        return bool(await self._write(fn))

    async def replace_audit_key(self, key_id: str, wrapped: bytes) -> None:
        def fn(c: sqlite3.Connection) -> None:
            c.execute("UPDATE audit_keys SET wrapped = ? WHERE key_id = ?", (wrapped, key_id))

        await self._write(fn)

    # -- alerts ---------------------------------------------------------------------
    async def add_alert(self, alert: Alert) -> int | None:
        a = alert

        def fn(c: sqlite3.Connection) -> int | None:
            cur = c.execute(
                "INSERT INTO alerts (tenant_id, rule, subject, dedup_key, severity, ts, count,"
                " details, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (dedup_key) DO NOTHING",
                (
                    a.tenant_id,
                    a.rule,
                    a.subject,
                    a.dedup_key,
                    a.severity,
                    a.ts,
                    a.count,
                    _dumps(a.details),
                    a.state,
                ),
            )
            rowid = cur.lastrowid
            return int(rowid) if cur.rowcount == 1 and rowid is not None else None

        return await self._write(fn)

    async def list_alerts(
        self, tenant_id: str, *, states: tuple[str, ...] | None = None, limit: int = 200
    ) -> list[Alert]:
        sql = f"SELECT {ALERT_COLS} FROM alerts WHERE tenant_id = ?"
        params: list[Any] = [tenant_id]
        if states:
            sql += f" AND state IN ({','.join('?' * len(states))})"
            params.extend(states)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        return [_rows.alert(r, json.loads) for r in await self._all(sql, params)]

    async def get_alert(self, alert_id: int) -> Alert | None:
        row = await self._first(f"SELECT {ALERT_COLS} FROM alerts WHERE id = ?", (alert_id,))
        return None if row is None else _rows.alert(row, json.loads)

    async def set_alert_state(
        self,
        alert_id: int,
        state: str,
        actor: str,
        now: float,
        incident_id: int | None = None,
    ) -> Alert | None:
        column = "acked" if state == "acknowledged" else "resolved"

        def fn(c: sqlite3.Connection) -> None:
            c.execute(
                f"UPDATE alerts SET state = ?, {column}_by = ?, {column}_at = ?,"
                " incident_id = COALESCE(?, incident_id) WHERE id = ?",
                (state, actor, now, incident_id, alert_id),
            )

        await self._write(fn)
        return await self.get_alert(alert_id)

    # -- incidents ------------------------------------------------------------------
    async def create_incident(self, incident: Incident) -> int:
        i = incident

        def fn(c: sqlite3.Connection) -> int:
            return int(
                c.execute(
                    "INSERT INTO incidents (tenant_id, severity, title, state, opened_by,"
                    " opened_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (i.tenant_id, i.severity, i.title, i.state, i.opened_by, i.opened_at),
                ).lastrowid
                or 0
            )

        return int(await self._write(fn))

    async def get_incident(self, incident_id: int) -> Incident | None:
        row = await self._first(
            f"SELECT {INCIDENT_COLS} FROM incidents WHERE id = ?", (incident_id,)
        )
        return None if row is None else _rows.incident(row)

    async def list_incidents(self, tenant_id: str, limit: int = 50) -> list[Incident]:
        rows = await self._all(
            f"SELECT {INCIDENT_COLS} FROM incidents WHERE tenant_id = ? ORDER BY id DESC LIMIT ?",
            (tenant_id, limit),
        )
        return [_rows.incident(r) for r in rows]

    async def close_incident(self, incident_id: int, now: float) -> None:
        def fn(c: sqlite3.Connection) -> None:
            c.execute(
                "UPDATE incidents SET state = 'closed', closed_at = ? WHERE id = ?"
                " AND state = 'open'",
                (now, incident_id),
            )

        await self._write(fn)

    async def add_incident_event(self, event: IncidentEvent) -> int:
        e = event

        def fn(c: sqlite3.Connection) -> int:
            return int(
                c.execute(
                    "INSERT INTO incident_events (incident_id, ts, actor, action, details)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (e.incident_id, e.ts, e.actor, e.action, _dumps(e.details)),
                ).lastrowid
                or 0
            )

        return int(await self._write(fn))

    async def list_incident_events(self, incident_id: int) -> list[IncidentEvent]:
        rows = await self._all(
            f"SELECT {INCIDENT_EVENT_COLS} FROM incident_events WHERE incident_id = ? ORDER BY id",
            (incident_id,),
        )
        return [_rows.incident_event(r, json.loads) for r in rows]

    # -- forced password resets -----------------------------------------------------
    async def force_password_resets(self, agent_ids: list[str], actor: str, now: float) -> int:
        def fn(c: sqlite3.Connection) -> int:
            c.executemany(
                "INSERT INTO password_resets_forced (agent_id, forced_at, forced_by)"
                " VALUES (?, ?, ?) ON CONFLICT (agent_id) DO NOTHING",
                [(a, now, actor) for a in agent_ids],
            )
            return len(agent_ids)

        return int(await self._write(fn))

    async def password_reset_forced(self, agent_id: str) -> bool:
        return (
            await self._first(
                "SELECT 1 FROM password_resets_forced WHERE agent_id = ?", (agent_id,)
            )
            is not None
        )

    async def clear_forced_password_reset(self, agent_id: str) -> None:
        def fn(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM password_resets_forced WHERE agent_id = ?", (agent_id,))

        await self._write(fn)

    # -- approvals ------------------------------------------------------------------
    async def add_grant(self, grant: AccessGrant) -> int:
        g = grant

        def fn(c: sqlite3.Connection) -> int:
            return int(
                c.execute(
                    "INSERT INTO access_grants (tenant_id, requester, action, target, reason,"
                    " state, approver, created_at, decided_at, expires_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
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
                    ),
                ).lastrowid
                or 0
            )

        return int(await self._write(fn))

    async def get_grant(self, grant_id: int) -> AccessGrant | None:
        row = await self._first(f"SELECT {GRANT_COLS} FROM access_grants WHERE id = ?", (grant_id,))
        return None if row is None else _rows.grant(row)

    async def decide_grant(
        self, grant_id: int, *, approved: bool, approver: str, now: float, expires_at: float | None
    ) -> bool:
        def fn(c: sqlite3.Connection) -> bool:
            return (
                c.execute(
                    "UPDATE access_grants SET state = ?, approver = ?, decided_at = ?,"
                    " expires_at = ? WHERE id = ? AND state = 'pending'",
                    ("approved" if approved else "denied", approver, now, expires_at, grant_id),
                ).rowcount
                == 1
            )

        return bool(await self._write(fn))

    async def list_grants(
        self, tenant_id: str, *, state: str | None = None, limit: int = 100
    ) -> list[AccessGrant]:
        sql = f"SELECT {GRANT_COLS} FROM access_grants WHERE tenant_id = ?"
        params: list[Any] = [tenant_id]
        if state:
            sql += " AND state = ?"
            params.append(state)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        return [_rows.grant(r) for r in await self._all(sql, params)]

    async def live_grant(
        self, tenant_id: str, requester: str, action: str, target: str, now: float
    ) -> AccessGrant | None:
        row = await self._first(
            f"SELECT {GRANT_COLS} FROM access_grants WHERE tenant_id = ? AND requester = ?"
            " AND action = ? AND target = ? AND state = 'approved' AND expires_at > ?"
            " ORDER BY id DESC LIMIT 1",
            (tenant_id, requester, action, target, now),
        )
        return None if row is None else _rows.grant(row)
