"""Column lists and row → record conversion shared by both backends.

Rows are anything indexable by column name (``sqlite3.Row``, ``asyncpg.Record``). JSON
columns come back as text from SQLite and already decoded from PostgreSQL, so every
converter takes the JSON decoder ``js`` of its backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.store.base import (
    AccessGrant,
    Agent,
    AgentSession,
    Alert,
    AuditCheckpoint,
    AuditEvent,
    Chat,
    Incident,
    IncidentEvent,
    LockoutRecord,
    OutboxItem,
    PluginConfig,
    PolicyFlag,
    StoredMessage,
    Tenant,
)

Row = Any
Json = Callable[[Any], Any]

TENANT_COLS = (
    "id, name, allowed_origins, identity_mode, identity_secrets_sealed, settings, frozen,"
    " created_at"
)
AGENT_COLS = (
    "id, tenant_id, email, display_name, role, password_hash, totp_secret_sealed,"
    " totp_confirmed, totp_last_step, disabled, created_at, password_changed_at, queues"
)
AGENT_SELECT = (
    "SELECT a.id, a.tenant_id, a.email, a.display_name, a.role, a.password_hash,"
    " a.totp_secret_sealed, a.totp_confirmed, a.totp_last_step, a.disabled, a.created_at,"
    " a.password_changed_at, a.queues, a.custom_role, r.permissions AS custom_permissions"
    " FROM agents a LEFT JOIN custom_roles r"
    " ON r.tenant_id = a.tenant_id AND r.name = a.custom_role"
)
"""Agents with their custom role's permissions (migration 0017), so an edit of a role
reaches every holder on their next request; table alias ``a`` in WHERE/ORDER BY."""
SESSION_COLS = (
    "token_hash, agent_id, tenant_id, created_at, last_seen_at, revoked_at, ip, user_agent,"
    " reauth_at, factor"
)
LOCKOUT_COLS = "key, failures, last_failure_at, locked_until, alerted_at"
AUDIT_COLS = "id, ts, action, tenant_id, actor, target, ip, details"
AUDIT_COLS = "id, ts, action, tenant_id, actor, target, ip, details, chain, seq, key_id, mac"
CHECKPOINT_COLS = "id, chain, seq, mac, ts, signer, signature, reason"
ALERT_COLS = (
    "id, tenant_id, rule, subject, dedup_key, severity, ts, count, details, state, acked_by,"
    " acked_at, resolved_by, resolved_at, incident_id"
)
INCIDENT_COLS = "id, tenant_id, severity, title, state, opened_by, opened_at, closed_at"
INCIDENT_EVENT_COLS = "id, incident_id, ts, actor, action, details"
GRANT_COLS = (
    "id, tenant_id, requester, action, target, reason, state, approver, created_at,"
    " decided_at, expires_at"
)
CHAT_COLS = (
    "id, tenant_id, state, created_at, queue, assigned_agent_id, resume_token_hash,"
    " identity_sealed, verified, profile_sealed, last_seq, closed_at, close_reason, csat,"
    " accepted_at, consent_sealed, first_response_at, transfers, rated_at,"
    " csat_comment_sealed, sla_alerted, mode, e2e_epoch, queued_at, assigned_at, answered_at"
)
MESSAGE_COLS = "chat_id, seq, msg_id, sender, ts, body_sealed, sender_agent_id, policy"
FLAG_COLS = "id, chat_id, tenant_id, seq, kinds, original_sealed, created_at, reviewed_by"
OUTBOX_COLS = (
    "id, tenant_id, plugin, event_type, idempotency_key, payload_sealed, chat_id, created_at,"
    " state, attempts, next_attempt_at, last_error, delivered_at, lease_token"
)
PLUGIN_COLS = "tenant_id, plugin, enabled, config, secrets_sealed, updated_at"


def blob(value: bytes | bytearray | memoryview | None) -> bytes | None:
    """Sealed data as ``bytes`` (None stays None: NOT NULL columns reject it)."""
    if value is None or type(value) is bytes:
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"sealed data must be bytes, not {type(value).__name__}")


def _tolerant_bytes(value: Any) -> bytes | None:
    """A MAC column as bytes; a value of the wrong type (written behind the store's back)
    becomes bytes that can never verify instead of an exception in the verifier."""
    if value is None or isinstance(value, bytes | bytearray | memoryview):
        return None if value is None else bytes(value)
    return str(value).encode("utf-8", "replace")


def _b(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


def tenant(r: Row, js: Json) -> Tenant:
    return Tenant(
        id=r["id"],
        name=r["name"],
        allowed_origins=list(js(r["allowed_origins"])),
        identity_mode=r["identity_mode"],
        identity_secrets_sealed=_b(r["identity_secrets_sealed"]),
        settings=dict(js(r["settings"])),
        frozen=bool(r["frozen"]),
        created_at=r["created_at"],
    )


def agent(r: Row) -> Agent:
    return Agent(
        id=r["id"],
        tenant_id=r["tenant_id"],
        email=r["email"],
        display_name=r["display_name"],
        role=r["role"],
        password_hash=r["password_hash"],
        totp_secret_sealed=_b(r["totp_secret_sealed"]),
        totp_confirmed=bool(r["totp_confirmed"]),
        totp_last_step=int(r["totp_last_step"]),
        disabled=bool(r["disabled"]),
        created_at=r["created_at"],
        password_changed_at=r["password_changed_at"],
        queues=tuple(q for q in (r["queues"] or "").split(",") if q),
        custom_role=r["custom_role"],
        custom_permissions=tuple(p for p in (r["custom_permissions"] or "").split(",") if p),
    )


def session(r: Row) -> AgentSession:
    return AgentSession(
        token_hash=r["token_hash"],
        agent_id=r["agent_id"],
        tenant_id=r["tenant_id"],
        created_at=r["created_at"],
        last_seen_at=r["last_seen_at"],
        revoked_at=r["revoked_at"],
        ip=r["ip"],
        user_agent=r["user_agent"],
        reauth_at=r["reauth_at"],
        factor=r["factor"],
    )


def lockout(r: Row) -> LockoutRecord:
    return LockoutRecord(
        key=r["key"],
        failures=float(r["failures"]),
        last_failure_at=r["last_failure_at"],
        locked_until=r["locked_until"],
        alerted_at=r["alerted_at"],
    )


def audit(r: Row, js: Json) -> AuditEvent:
    return AuditEvent(
        id=int(r["id"]),
        ts=r["ts"],
        action=r["action"],
        tenant_id=r["tenant_id"],
        actor=r["actor"],
        target=r["target"],
        ip=r["ip"],
        details=dict(js(r["details"])),
        chain=r["chain"],
        seq=None if r["seq"] is None else int(r["seq"]),
        key_id=r["key_id"],
        mac=_tolerant_bytes(r["mac"]),
    )


def checkpoint(r: Row) -> AuditCheckpoint:
    return AuditCheckpoint(
        id=int(r["id"]),
        chain=r["chain"],
        seq=int(r["seq"]),
        mac=bytes(r["mac"]),
        ts=r["ts"],
        signer=r["signer"],
        signature=bytes(r["signature"]),
        reason=r["reason"],
    )


def alert(r: Row, js: Json) -> Alert:
    return Alert(
        id=int(r["id"]),
        tenant_id=r["tenant_id"],
        rule=r["rule"],
        subject=r["subject"],
        dedup_key=r["dedup_key"],
        severity=r["severity"],
        ts=r["ts"],
        count=int(r["count"]),
        details=dict(js(r["details"])),
        state=r["state"],
        acked_by=r["acked_by"],
        acked_at=r["acked_at"],
        resolved_by=r["resolved_by"],
        resolved_at=r["resolved_at"],
        incident_id=None if r["incident_id"] is None else int(r["incident_id"]),
    )


def incident(r: Row) -> Incident:
    return Incident(
        id=int(r["id"]),
        tenant_id=r["tenant_id"],
        severity=r["severity"],
        title=r["title"],
        state=r["state"],
        opened_by=r["opened_by"],
        opened_at=r["opened_at"],
        closed_at=r["closed_at"],
    )


def incident_event(r: Row, js: Json) -> IncidentEvent:
    return IncidentEvent(
        id=int(r["id"]),
        incident_id=int(r["incident_id"]),
        ts=r["ts"],
        actor=r["actor"],
        action=r["action"],
        details=dict(js(r["details"])),
    )


def chat(r: Row) -> Chat:
    """A chat from a row that starts with ``CHAT_COLS``, read by position: sqlite3.Row
    finds a column by name by comparing it with every column name, and a chat has 26 of
    them (a 1,000-chat queue read spent more on those lookups than on its query)."""
    (
        id_,
        tenant_id,
        state,
        created_at,
        queue,
        assigned_agent_id,
        resume_token_hash,
        identity_sealed,
        verified,
        profile_sealed,
        last_seq,
        closed_at,
        close_reason,
        csat,
        accepted_at,
        consent_sealed,
        first_response_at,
        transfers,
        rated_at,
        csat_comment_sealed,
        sla_alerted,
        mode,
        e2e_epoch,
        queued_at,
        assigned_at,
        answered_at,
    ) = tuple(r)[:_CHAT_WIDTH]
    return Chat(
        id=id_,
        tenant_id=tenant_id,
        state=state,
        created_at=created_at,
        queue=queue,
        assigned_agent_id=assigned_agent_id,
        resume_token_hash=resume_token_hash,
        identity_sealed=_b(identity_sealed),
        verified=bool(verified),
        profile_sealed=_b(profile_sealed),
        last_seq=int(last_seq),
        closed_at=closed_at,
        close_reason=close_reason,
        csat=csat,
        accepted_at=accepted_at,
        consent_sealed=_b(consent_sealed),
        first_response_at=first_response_at,
        transfers=int(transfers),
        rated_at=rated_at,
        csat_comment_sealed=_b(csat_comment_sealed),
        sla_alerted=int(sla_alerted),
        mode=mode,
        e2e_epoch=int(e2e_epoch),
        queued_at=queued_at,
        assigned_at=assigned_at,
        answered_at=answered_at,
    )


_CHAT_WIDTH = len(CHAT_COLS.split(","))


def message(r: Row, js: Json) -> StoredMessage:
    return StoredMessage(
        chat_id=r["chat_id"],
        seq=int(r["seq"]),
        msg_id=r["msg_id"],
        sender=r["sender"],
        ts=r["ts"],
        body_sealed=bytes(r["body_sealed"]),
        sender_agent_id=r["sender_agent_id"],
        policy=dict(js(r["policy"])),
    )


def flag(r: Row, js: Json) -> PolicyFlag:
    return PolicyFlag(
        id=int(r["id"]),
        chat_id=r["chat_id"],
        tenant_id=r["tenant_id"],
        seq=int(r["seq"]),
        kinds=list(js(r["kinds"])),
        original_sealed=bytes(r["original_sealed"]),
        created_at=r["created_at"],
        reviewed_by=r["reviewed_by"],
    )


def outbox(r: Row) -> OutboxItem:
    return OutboxItem(
        id=int(r["id"]),
        tenant_id=r["tenant_id"],
        plugin=r["plugin"],
        event_type=r["event_type"],
        idempotency_key=r["idempotency_key"],
        payload_sealed=bytes(r["payload_sealed"]),
        chat_id=r["chat_id"],
        created_at=r["created_at"],
        state=r["state"],
        attempts=int(r["attempts"]),
        next_attempt_at=r["next_attempt_at"],
        last_error=r["last_error"],
        delivered_at=r["delivered_at"],
        lease_token=int(r["lease_token"]),
    )


def plugin_config(r: Row, js: Json) -> PluginConfig:
    return PluginConfig(
        tenant_id=r["tenant_id"],
        plugin=r["plugin"],
        enabled=bool(r["enabled"]),
        config=dict(js(r["config"])),
        secrets_sealed=_b(r["secrets_sealed"]),
        updated_at=r["updated_at"],
    )


def grant(r: Row) -> AccessGrant:
    return AccessGrant(
        id=int(r["id"]),
        tenant_id=r["tenant_id"],
        requester=r["requester"],
        action=r["action"],
        target=r["target"],
        reason=r["reason"],
        state=r["state"],
        approver=r["approver"],
        created_at=r["created_at"],
        decided_at=r["decided_at"],
        expires_at=r["expires_at"],
    )
