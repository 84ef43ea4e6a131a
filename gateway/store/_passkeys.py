# ruff: noqa: S608
# (S608: SQL text here is built only from constant fragments and placeholders; every value
# is a bound parameter.)
"""SQL for passkeys and WebAuthn challenges (issue 20.1), written once in SQLite's
spelling for both engines."""

from __future__ import annotations

from gateway.store._rows import Row
from gateway.store.base import Passkey

COLS = (
    "credential_id, agent_id, tenant_id, name, public_key, sign_count, transports,"
    " created_at, last_used_at"
)
INSERT = (
    f"INSERT INTO passkeys ({COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (credential_id) DO NOTHING"
)
BY_AGENT = f"SELECT {COLS} FROM passkeys WHERE agent_id = ? ORDER BY created_at, credential_id"
BY_ID = f"SELECT {COLS} FROM passkeys WHERE credential_id = ?"
COUNTS = "SELECT agent_id, COUNT(*) AS n FROM passkeys WHERE tenant_id = ? GROUP BY agent_id"
DELETE = "DELETE FROM passkeys WHERE credential_id = ? AND agent_id = ?"
# The counter only moves forward: a concurrent login that read an older count loses.
USED = (
    "UPDATE passkeys SET sign_count = ?, last_used_at = ?"
    " WHERE credential_id = ? AND (sign_count < ? OR sign_count = 0)"
)

INSERT_CHALLENGE = (
    "INSERT INTO webauthn_challenges (id, purpose, agent_id, challenge, expires_at)"
    " VALUES (?, ?, ?, ?, ?)"
)
TAKE_CHALLENGE = (
    "DELETE FROM webauthn_challenges WHERE id = ? AND purpose = ? AND expires_at > ?"
    " RETURNING agent_id, challenge"
)
PURGE_CHALLENGES = "DELETE FROM webauthn_challenges WHERE expires_at <= ?"


def params(p: Passkey) -> tuple[object, ...]:
    return (
        p.credential_id,
        p.agent_id,
        p.tenant_id,
        p.name,
        p.public_key,
        p.sign_count,
        ",".join(p.transports),
        p.created_at,
        p.last_used_at,
    )


def passkey(r: Row) -> Passkey:
    return Passkey(
        credential_id=r["credential_id"],
        agent_id=r["agent_id"],
        tenant_id=r["tenant_id"],
        name=r["name"],
        public_key=bytes(r["public_key"]),
        sign_count=int(r["sign_count"]),
        transports=tuple(t for t in r["transports"].split(",") if t),
        created_at=r["created_at"],
        last_used_at=r["last_used_at"],
    )
