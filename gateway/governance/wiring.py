"""Wiring of the governance components (issue 14) into one gateway node.

:func:`build_governance` is called once from :mod:`gateway.app`; it connects the
auditor's listeners (anomaly rules, SIEM sink), the alert hooks (Prometheus, live
admin stream over the bus, notifications), the incident record, the emergency actions
and the plugin hooks (kill switch, data-sent accounting). Handlers reach it with
:func:`governance_of`.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from crypto.envelope import Keyring
from gateway.audit import Auditor
from gateway.bus.base import Bus, BusEvent
from gateway.config import Config
from gateway.governance.alerts import AlertEngine
from gateway.governance.approvals import Approvals
from gateway.governance.emergency import Emergency, plugins_paused
from gateway.governance.incidents import Incidents
from gateway.governance.siem import AUDIT_EVENT, SiemSink
from gateway.metrics import Metrics
from gateway.notify import Notifier
from gateway.periodic import Periodic
from gateway.store.base import Alert, Store
from gateway.tenants import TenantDirectory

log = structlog.get_logger("cipherdesk.governance")

DATA_SENT_FLUSH = 60.0


def alerts_topic(tenant_id: str) -> str:
    """Bus topic nudging the admin pages' live alert streams of one tenant."""
    return f"alerts:{tenant_id}"


@dataclass(slots=True)
class PluginDataLedger:
    """Counts what each plugin received, per tenant and event type, and writes one
    ``plugin.data_sent`` audit event per (tenant, plugin) and flush interval — an audit
    row per delivered message would drown the log."""

    auditor: Auditor
    interval: float = DATA_SENT_FLUSH
    counts: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)
    _periodic: Periodic | None = None

    def delivered(self, tenant_id: str, plugin: str, event_type: str) -> None:
        self.counts.setdefault((tenant_id, plugin), Counter())[event_type] += 1

    async def flush(self) -> int:
        pending, self.counts = self.counts, {}
        for (tenant_id, plugin), counter in sorted(pending.items()):
            await self.auditor.record(
                "plugin.data_sent",
                tenant_id=tenant_id,
                actor="system",
                target=plugin,
                plugin=plugin,
                events=dict(counter),
                total=sum(counter.values()),
            )
        return len(pending)

    async def start(self) -> None:
        if self._periodic is None:
            self._periodic = Periodic(
                "plugin-data-ledger",
                self.interval,
                self.flush,
                failure_event="plugin_data_flush_failed",
                delay_first=True,
            )
            await self._periodic.start()

    async def stop(self) -> None:
        periodic, self._periodic = self._periodic, None
        if periodic is not None:
            await periodic.stop()
        with contextlib.suppress(Exception):
            await self.flush()


@dataclass(slots=True)
class Governance:
    alerts: AlertEngine
    notifier: Notifier
    incidents: Incidents
    emergency: Emergency
    ledger: PluginDataLedger
    tenants: TenantDirectory
    auditor: Auditor
    approvals: Approvals

    async def plugins_paused(self, tenant_id: str) -> bool:
        """The outbox dispatcher's kill-switch check."""
        tenant = await self.tenants.get(tenant_id)
        return tenant is not None and plugins_paused(tenant.settings)

    async def on_delivery(self, plugin: str, result: Any) -> None:
        """The dispatcher's result hook: count deliveries, audit dead letters."""
        if result.outcome == "delivered":
            if result.event_type != AUDIT_EVENT:  # audit rows to a SIEM: no feedback loop
                self.ledger.delivered(result.tenant_id, plugin, result.event_type)
        elif result.outcome == "dead":
            await self.auditor.record(
                "plugin.dead_lettered",
                tenant_id=result.tenant_id,
                actor="system",
                target=plugin,
                plugin=plugin,
                event_type=result.event_type,
                error=result.error,
            )


def build_governance(
    *,
    config: Config,
    store: Store,
    bus: Bus,
    keyring: Keyring,
    auditor: Auditor,
    tenants: TenantDirectory,
    metrics: Metrics,
    clock: Callable[[], float],
) -> Governance:
    async def settings_of(tenant_id: str) -> dict[str, Any]:
        tenant = await tenants.get(tenant_id)
        return tenant.settings if tenant is not None else {}

    engine = AlertEngine(store, auditor, clock, settings_of=settings_of)
    notifier = Notifier(store, keyring, auditor, config.notify, clock)

    def count(alert: Alert) -> None:
        metrics.alerts_total.labels(rule=alert.rule, severity=alert.severity).inc()

    async def publish(alert: Alert) -> None:
        await bus.publish(alerts_topic(alert.tenant_id), BusEvent(kind="alert"))

    engine.on_alert.extend([count, publish, notifier.schedule])
    auditor.listeners.append(engine)
    sink = SiemSink(config.audit.siem_file, config.audit.siem_stdout)
    if sink.enabled:
        auditor.listeners.append(sink)
    incidents = Incidents(store, auditor, clock)
    emergency = Emergency(store, bus, auditor, incidents, clock, tenants.invalidate)
    return Governance(
        alerts=engine,
        notifier=notifier,
        incidents=incidents,
        emergency=emergency,
        ledger=PluginDataLedger(auditor),
        tenants=tenants,
        auditor=auditor,
        approvals=Approvals(store, auditor, clock, settings_of),
    )


def governance_of(svc: Any) -> Governance:
    return svc.governance


async def rewrap_governance(svc: Any) -> tuple[int, int]:
    """Master-key rotation: re-wrap the audit roots and reseal tenants' alert-channel
    secrets under the current master key. Returns ``(audit roots, channel secrets)``."""
    roots = await svc.audit_keys.rewrap()
    return roots, await governance_of(svc).notifier.reseal_all()
