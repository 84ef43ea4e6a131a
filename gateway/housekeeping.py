"""Housekeeping: delete login state that can no longer be used, after a keep period.

Ended agent sessions (revoked, idle past the idle timeout, older than the absolute
lifetime), revoked or expired API tokens and agent invites (used ones too: the new
account is in the agents table, the event in the audit log), and lockout rows with no
failure for a week were
kept forever: every login from a garbage e-mail address left a row, and every session's
address and browser stayed in the database. They are deleted once dead for
``KEEP_DAYS`` (long enough for "your sessions", the token list and an incident review to
still show them; the audit log keeps the events either way). Run by the retention worker
on its interval; the clock is injectable so tests are exact.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from gateway.config import AuthConfig
from gateway.store.base import PurgeCutoffs, Store

log = structlog.get_logger("cipherdesk.housekeeping")

DAY = 86_400.0
KEEP_DAYS = 30
"""Days a dead session, API token or invite is kept before it is deleted."""
LOCKOUT_IDLE_DAYS = 7
"""Days without a failure after which a lockout row is deleted (its count has decayed)."""


class Housekeeping:
    """Deletes dead sessions, tokens and lockout rows; see the module docstring."""

    def __init__(self, store: Store, auth: AuthConfig, clock: Callable[[], float]) -> None:
        self._store = store
        self._auth = auth
        self._clock = clock

    def cutoffs(self, now: float) -> PurgeCutoffs:
        keep = KEEP_DAYS * DAY
        return PurgeCutoffs(
            sessions_ended_before=now - keep,
            sessions_idle_before=now - self._auth.idle_timeout - keep,
            sessions_created_before=now - self._auth.absolute_lifetime - keep,
            tokens_dead_before=now - keep,
            lockouts_idle_before=now - LOCKOUT_IDLE_DAYS * DAY,
        )

    async def run_once(self) -> dict[str, int]:
        """Delete what is past its keep period; returns the count per table."""
        counts = await self._store.purge_dead_rows(self.cutoffs(self._clock()))
        if any(counts.values()):
            log.info("housekeeping_purged", **counts)
        return counts
