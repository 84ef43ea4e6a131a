"""SQL for single sign-on (issue 20.2, migration 0020), written once in SQLite's spelling
for both engines."""

from __future__ import annotations

from gateway.store._rows import Row
from gateway.store.base import OidcSession

INSERT_STATE = (
    "INSERT INTO oidc_states (state_hash, tenant_id, nonce, verifier, expires_at)"
    " VALUES (?, ?, ?, ?, ?)"
)
PURGE_STATES = "DELETE FROM oidc_states WHERE expires_at <= ?"
TAKE_STATE = (
    "DELETE FROM oidc_states WHERE state_hash = ? AND expires_at > ?"
    " RETURNING tenant_id, nonce, verifier"
)
SESSION_COLS = "token_hash, agent_id, tenant_id, refresh_sealed, checked_at"
SAVE_SESSION = (
    f"INSERT INTO oidc_sessions ({SESSION_COLS}) VALUES (?, ?, ?, ?, ?)"  # noqa: S608
    " ON CONFLICT (token_hash) DO UPDATE SET refresh_sealed = excluded.refresh_sealed,"
    " checked_at = excluded.checked_at"
)
DUE = (
    f"SELECT {SESSION_COLS} FROM oidc_sessions WHERE checked_at <= ?"  # noqa: S608
    " ORDER BY checked_at LIMIT ?"
)
DELETE_SESSION = "DELETE FROM oidc_sessions WHERE token_hash = ?"


def session(r: Row) -> OidcSession:
    return OidcSession(
        token_hash=r["token_hash"],
        agent_id=r["agent_id"],
        tenant_id=r["tenant_id"],
        refresh_sealed=bytes(r["refresh_sealed"]),
        checked_at=r["checked_at"],
    )
