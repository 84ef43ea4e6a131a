"""Audit events for a SIEM: one JSON object per line (stdout, a file, ``audit export``), or
one signed webhook delivery per row through the durable plugin outbox (:class:`SiemOutbox`).

Why JSON lines: every SIEM (Splunk, Elastic, QRadar, Graylog, 日志易) ingests them with
no custom parser, and a file appended line by line survives a crash with at most one
partial line. Each line carries the row's chain position and MAC, so a copy kept off
the host is also evidence against later tampering (tail truncation included).

What a line contains: the audit row itself — action, tenant, actor, target, ip and the
already-redacted details. Audit details never hold message text (the
:class:`gateway.audit.Auditor` redacts them like logs), so neither does the export.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

import structlog

from gateway.plugin_host import PluginHost
from gateway.store.base import AuditEvent, Store
from gateway.tenants import TenantDirectory

log = structlog.get_logger("cipherdesk.siem")


def siem_record(event: AuditEvent) -> dict[str, Any]:
    """The exported shape of one audit row (stable field names; documented in README)."""
    return {
        "id": event.id,
        "ts": event.ts,
        "time": dt.datetime.fromtimestamp(event.ts, dt.UTC).isoformat().replace("+00:00", "Z"),
        "action": event.action,
        "tenant": event.tenant_id,
        "actor": event.actor,
        "target": event.target,
        "ip": event.ip,
        "details": event.details,
        "chain": event.chain,
        "seq": event.seq,
        "key_id": event.key_id,
        "mac": event.mac.hex() if event.mac is not None else None,
    }


def siem_line(event: AuditEvent) -> str:
    return (
        json.dumps(siem_record(event), ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        + "\n"
    )


class SiemSink:
    """An :class:`~gateway.audit.Auditor` listener appending every event to a JSON-lines
    file (opened append-only, 0600) and/or stdout."""

    def __init__(self, path: str = "", stdout: bool = False, stream: TextIO | None = None) -> None:
        self._path = Path(path).expanduser() if path else None
        self._stream = stream if stream is not None else (sys.stdout if stdout else None)
        self._lock = asyncio.Lock()

    @property
    def enabled(self) -> bool:
        return self._path is not None or self._stream is not None

    async def __call__(self, event: AuditEvent) -> None:
        line = siem_line(event)
        async with self._lock:
            if self._stream is not None:
                self._stream.write(line)
                self._stream.flush()
            if self._path is not None:
                await asyncio.to_thread(self._append, line)

    def _append(self, line: str) -> None:
        assert self._path is not None
        fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)


AUDIT_EVENT = "audit.recorded"


def _about_audit_deliveries(event: AuditEvent) -> bool:
    """Rows the delivery of audit events itself causes: forwarding them would feed back
    (a dead-lettered audit event audited, forwarded, dead-lettered...)."""
    return bool(event.details) and event.details.get("event_type") == AUDIT_EVENT


class SiemOutbox:
    """An :class:`~gateway.audit.Auditor` listener that queues every tenant audit row as an
    ``audit.recorded`` event for the tenant's plugins that asked for it (the webhook plugin
    with ``audit.recorded`` in its ``events``): signed, retried and dead-lettered by the
    outbox like any event, and enqueued after the row is written, so a SIEM gets what the
    chain holds. Installation-wide rows (no tenant) stay in the file/stdout export."""

    def __init__(self, store: Store, plugins: PluginHost, tenants: TenantDirectory) -> None:
        self._store = store
        self._plugins = plugins
        self._tenants = tenants

    async def __call__(self, event: AuditEvent) -> None:
        if event.tenant_id is None or _about_audit_deliveries(event):
            return
        tenant = await self._tenants.get(event.tenant_id)
        if tenant is None:
            return
        targets = await self._plugins.targets(tenant, AUDIT_EVENT)
        if not targets:
            return
        record = siem_record(event)
        data = {
            "occurred_at": event.ts,
            "audit_id": event.id,
            **{k: record[k] for k in ("action", "actor", "target", "ip", "details", "chain")},
            **{k: record[k] for k in ("seq", "key_id", "mac")},
        }
        rows = self._plugins.build_tenant_events(
            targets, tenant.id, AUDIT_EVENT, data, event_key=str(event.id)
        )
        await self._store.enqueue_events(rows)
        self._plugins.enqueued()
