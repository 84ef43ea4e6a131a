"""Recording security events (handbook rule: record every access to customer data).

The audit table is append-only at the SQL level (triggers refuse UPDATE, and DELETE of
rows not covered by a signed checkpoint), and every row is MAC-chained per tenant
(:mod:`gateway.governance.auditchain`), so a row edited, deleted or inserted behind the gateway's
back is detected by ``cipherdesk audit verify``. Details pass through the same
redaction as logs, so a careless caller cannot store a secret.

Listeners (the anomaly rules of :mod:`gateway.governance.alerts`, the SIEM export of
:mod:`gateway.governance.siem`) see every event after it is stored; a failing listener is logged
and never undoes or blocks the action being audited.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from gateway.logs import redact
from gateway.store.base import AuditEvent, AuditSeal, Store

log = structlog.get_logger("cipherdesk.audit")

Listener = Callable[[AuditEvent], Awaitable[None]]


class Auditor:
    """Writes audit events with an injectable clock; never raises into the caller's flow
    for a *logging* failure of the mirror log, but does propagate store failures (an
    action whose audit record cannot be written must not silently succeed)."""

    def __init__(
        self, store: Store, clock: Callable[[], float], seal: AuditSeal | None = None
    ) -> None:
        self._store = store
        self._clock = clock
        self.seal = seal
        """Chains every row when set (the app sets it to :meth:`AuditKeys.seal`)."""
        self.listeners: list[Listener] = []

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
        event_id = await self._store.append_audit(event, self.seal)
        event.id = event_id
        log.info("audit", action=action, tenant=tenant_id, actor=actor, target=target)
        for listener in self.listeners:
            try:
                await listener(event)
            except Exception:
                log.exception("audit_listener_failed", action=action)
        return event_id
