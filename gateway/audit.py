"""Recording security events (handbook rule: record every access to customer data).

The audit table is append-only at the SQL level (triggers refuse UPDATE/DELETE). Details
pass through the same redaction as logs, so a careless caller cannot store a secret.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from gateway.logs import redact
from gateway.store.base import AuditEvent, Store

log = structlog.get_logger("cipherdesk.audit")


class Auditor:
    """Writes audit events with an injectable clock; never raises into the caller's flow
    for a *logging* failure of the mirror log, but does propagate store failures (an
    action whose audit record cannot be written must not silently succeed)."""

    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock

    async def record(
        self,
        action: str,
        *,
        tenant_id: str | None = None,
        actor: str | None = None,
        target: str | None = None,
        ip: str | None = None,
        **details: Any,
    ) -> int:
        safe = redact(None, "audit", dict(details))
        event = AuditEvent(
            ts=self._clock(),
            action=action,
            tenant_id=tenant_id,
            actor=actor,
            target=target,
            ip=ip,
            details=safe,
        )
        event_id = await self._store.append_audit(event)
        log.info("audit", action=action, tenant=tenant_id, actor=actor, target=target)
        return event_id
