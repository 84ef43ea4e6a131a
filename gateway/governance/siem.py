"""Audit events for a SIEM: one JSON object per line (stdout, a file, ``audit export``).

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

from gateway.store.base import AuditEvent

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
