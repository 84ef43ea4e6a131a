"""SQL of the housekeeping purge (ended sessions, dead API tokens, idle lockout rows, dead
agent invites),
shared by both store backends: written once and rendered per engine by
:mod:`gateway.store.sql`.

Each statement deletes rows that can no longer authenticate or throttle anything and that
have been dead for the keep period the caller chose (see :mod:`gateway.housekeeping`).
"""

from __future__ import annotations

from typing import Any

from gateway.store.base import PurgeCutoffs

STATEMENTS: tuple[tuple[str, str], ...] = (
    (
        "sessions",
        "DELETE FROM agent_sessions WHERE (revoked_at IS NOT NULL AND revoked_at < ?)"
        " OR last_seen_at < ? OR created_at < ?",
    ),
    (
        "api_tokens",
        "DELETE FROM api_tokens WHERE (revoked_at IS NOT NULL AND revoked_at < ?)"
        " OR expires_at < ?",
    ),
    ("lockouts", "DELETE FROM lockouts WHERE last_failure_at < ? AND locked_until < ?"),
    (
        # an invite ends when used, revoked or expired, whichever came first; its row holds
        # the invitee's address, which has no business staying once the link is dead
        "invites",
        "DELETE FROM agent_invites WHERE (used_at IS NOT NULL AND used_at < ?)"
        " OR (revoked_at IS NOT NULL AND revoked_at < ?) OR expires_at < ?",
    ),
)


def params(name: str, c: PurgeCutoffs) -> tuple[Any, ...]:
    """Bound values of statement ``name`` in marker order."""
    return {
        "sessions": (c.sessions_ended_before, c.sessions_idle_before, c.sessions_created_before),
        "api_tokens": (c.tokens_dead_before, c.tokens_dead_before),
        "lockouts": (c.lockouts_idle_before, c.lockouts_idle_before),
        "invites": (c.tokens_dead_before,) * 3,
    }[name]
