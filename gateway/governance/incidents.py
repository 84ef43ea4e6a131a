"""Incident records: what happened, and who did what in response, in order.

Why automatic: in an emergency nobody writes minutes. Every emergency-panel action and
every alert acknowledged or resolved lands in the tenant's *open* incident (one is
opened on the first such action), so the record exists even if the responders never
open it by hand. Each timeline entry is also an audit event (``incident.*``), so the
record is covered by the tamper-evident chain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.audit import Auditor
from gateway.store.base import Incident, IncidentEvent, Store

SEVERITIES = ("low", "medium", "high", "critical")
_RANK = {s: i for i, s in enumerate(SEVERITIES)}


class Incidents:
    """Opens incidents and appends to their timelines."""

    def __init__(self, store: Store, auditor: Auditor, clock: Callable[[], float]) -> None:
        self._store = store
        self._auditor = auditor
        self._clock = clock

    async def current(self, tenant_id: str) -> Incident | None:
        return next(
            (i for i in await self._store.list_incidents(tenant_id, limit=20) if i.state == "open"),
            None,
        )

    async def open(self, tenant_id: str, actor: str, *, severity: str, title: str) -> Incident:
        incident = Incident(
            tenant_id=tenant_id,
            severity=severity,
            title=title[:200],
            opened_by=actor,
            opened_at=self._clock(),
        )
        incident.id = await self._store.create_incident(incident)
        await self._auditor.record(
            "incident.opened",
            tenant_id=tenant_id,
            actor=actor,
            target=str(incident.id),
            severity=severity,
        )
        await self._event(
            incident.id, actor, "incident.opened", {"severity": severity, "title": incident.title}
        )
        return incident

    async def note(
        self,
        tenant_id: str,
        actor: str,
        action: str,
        details: dict[str, Any] | None = None,
        *,
        severity: str = "high",
        title: str = "Emergency response",
    ) -> Incident:
        """Append ``action`` to the tenant's open incident, opening one if needed."""
        incident = await self.current(tenant_id)
        if incident is None:
            incident = await self.open(tenant_id, actor, severity=severity, title=title)
        await self._event(incident.id, actor, action, details or {})
        return incident

    async def close(self, incident: Incident, actor: str, summary: str = "") -> None:
        await self._event(
            incident.id, actor, "incident.closed", {"summary": summary[:500]} if summary else {}
        )
        await self._store.close_incident(incident.id, self._clock())
        await self._auditor.record(
            "incident.closed", tenant_id=incident.tenant_id, actor=actor, target=str(incident.id)
        )

    async def _event(
        self, incident_id: int, actor: str, action: str, details: dict[str, Any]
    ) -> None:
        await self._store.add_incident_event(
            IncidentEvent(
                incident_id=incident_id,
                ts=self._clock(),
                actor=actor,
                action=action,
                details=details,
            )
        )


def worse(a: str, b: str) -> str:
    """The more severe of two severities."""
    return a if _RANK.get(a, 0) >= _RANK.get(b, 0) else b
