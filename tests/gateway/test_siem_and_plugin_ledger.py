"""SIEM JSON-lines sink and the per-plugin data-sent ledger (audit coverage of what left
the gateway for third parties), on a real SQLite store."""

from __future__ import annotations

import io
import json
import os
from types import SimpleNamespace

import pytest

from auth.clock import ManualClock
from gateway.audit import Auditor
from gateway.governance.siem import SiemSink
from gateway.governance.wiring import Governance, PluginDataLedger
from gateway.store import open_store


@pytest.fixture
async def store(tmp_path):
    s = open_store(f"sqlite:///{tmp_path}/c.db", tmp_path)
    await s.open()
    yield s
    await s.close()


async def test_siem_sink_writes_json_lines_without_secrets(store, tmp_path):
    path = tmp_path / "siem.jsonl"
    stream = io.StringIO()
    auditor = Auditor(store, ManualClock(1_700_000_000.0))
    auditor.listeners.append(SiemSink(str(path), stream=stream))
    await auditor.record(
        "login.failed",
        tenant_id="t1",
        actor="a1",
        ip="203.0.113.5",
        reason="bad_password",
        password="hunter2-hunter2",
        note="card 4111111111111111",
    )
    [line] = path.read_text().splitlines()
    record = json.loads(line)
    assert record["action"] == "login.failed" and record["time"] == "2023-11-14T22:13:20Z"
    assert record["ip"] == "203.0.113.5" and record["details"]["reason"] == "bad_password"
    assert "hunter2" not in line and "4111111111111111" not in line
    assert stream.getvalue() == line + "\n"
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"


async def test_plugin_deliveries_are_counted_and_dead_letters_audited(store):
    auditor = Auditor(store, ManualClock(1_700_000_000.0))
    ledger = PluginDataLedger(auditor)
    gov = Governance(
        alerts=None,
        notifier=None,
        incidents=None,
        emergency=None,  # type: ignore[arg-type]
        ledger=ledger,
        tenants=None,
        auditor=auditor,  # type: ignore[arg-type]
        approvals=None,
    )  # type: ignore[arg-type]

    def result(outcome: str, event_type: str = "chat.message"):
        return SimpleNamespace(
            outcome=outcome,
            tenant_id="t1",
            event_type=event_type,
            error="PermanentError: 422" if outcome == "dead" else None,
        )

    for _ in range(3):
        await gov.on_delivery("zendesk", result("delivered"))
    await gov.on_delivery("zendesk", result("delivered", "chat.closed"))
    await gov.on_delivery("zendesk", result("deferred"))
    await gov.on_delivery("zendesk", result("dead"))
    assert await ledger.flush() == 1
    [sent] = await store.query_audit(action="plugin.data_sent")
    assert sent.target == "zendesk" and sent.details["events"] == {
        "chat.message": 3,
        "chat.closed": 1,
    }
    assert sent.details["total"] == 4
    [dead] = await store.query_audit(action="plugin.dead_lettered")
    assert dead.details["plugin"] == "zendesk" and dead.details["event_type"] == "chat.message"
    assert await ledger.flush() == 0  # counts were reset
