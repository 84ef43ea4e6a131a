"""The tenant's audit log to a SIEM through the durable outbox (issue 14, "export for a SIEM:
... webhook through the durable outbox"): a webhook plugin that asks for ``audit.recorded``
gets every tenant audit row once, signed, with its chain position and MAC and the redacted
details (never message text); a webhook configured by default gets none; a receiver that is
down gets them later from the outbox; a dead-lettered audit delivery does not feed back."""

from __future__ import annotations

import asyncio

from gateway.governance.siem import AUDIT_EVENT
from gateway.sdk.client import CustomerClient
from plugins.api import AuditRecorded, event_from_dict
from tests.gateway.helpers import start_gateway
from tests.plugins.fakes import WebhookReceiver, eventually


async def test_audit_rows_reach_a_siem_webhook_once_signed_and_in_chain(tmp_path):
    siem = await WebhookReceiver().start()
    runner, base, svc = await start_gateway(
        tmp_path, plugins={"allow_private_targets": True, "delivery_timeout": 5.0}
    )
    customer = CustomerClient(base, "demo", origin=base, gateway_key=svc.identity.verify_key_b64)
    try:
        host = svc.plugins
        await host.configure(
            "demo",
            "webhook",
            {"url": f"{siem.url}/hook", "secret": siem.secret, "events": [AUDIT_EVENT]},
        )
        siem.down = True  # the SIEM is unreachable at first: events wait in the outbox
        await svc.auditor.record(
            "transcript.opened", tenant_id="demo", actor="agt_x", target="chat_1", via="watch"
        )
        await svc.auditor.record("installation.checked", tenant_id=None, actor="operator")
        await customer.connect()
        await customer.open()
        await customer.send_text("my card is 4111 1111 1111 1111")
        await asyncio.sleep(0.5)
        assert siem.accepted == {}
        siem.down = False

        async def arrived() -> bool:
            actions = [e["action"] for e in siem.accepted.values()]
            return "transcript.opened" in actions

        await eventually(arrived, seconds=30)
        events = [event_from_dict(e) for e in siem.accepted.values()]
        assert all(isinstance(e, AuditRecorded) for e in events)
        opened = next(
            e for e in events if isinstance(e, AuditRecorded) and e.action == "transcript.opened"
        )
        assert (opened.actor, opened.target, opened.details) == (
            "agt_x",
            "chat_1",
            {"via": "watch"},
        )
        assert opened.chain and opened.seq and opened.mac and opened.chat_id == ""
        rows = await svc.store.query_audit(tenant_id="demo", action="transcript.opened")
        assert opened.audit_id == rows[0].id and opened.mac == rows[0].mac.hex()
        # Installation rows stay out of a tenant's SIEM; message text never appears.
        assert all(e.action != "installation.checked" for e in events)  # type: ignore[union-attr]
        assert "4111 1111 1111 1111" not in str(list(siem.accepted.values()))
        assert max(siem.hits.values()) == 1  # each row delivered once
        assert siem.rejected == 0
    finally:
        await customer.aclose()
        await runner.cleanup()
        await siem.close()


async def test_a_default_webhook_gets_no_audit_rows_and_audit_deliveries_do_not_loop(tmp_path):
    """Chat webhooks configured without ``events`` do not start receiving the audit log;
    with ``audit.recorded`` every tenant row is queued, except the rows the delivery of
    audit events itself causes (a dead-lettered audit event), which would feed back."""
    hook = await WebhookReceiver().start()
    hook.down = True  # nothing is delivered: only what is queued is looked at
    runner, _, svc = await start_gateway(
        tmp_path, plugins={"allow_private_targets": True, "delivery_timeout": 5.0}
    )
    try:
        tenant = await svc.store.get_tenant("demo")
        assert tenant is not None
        config = {"url": f"{hook.url}/hook", "secret": hook.secret}
        await svc.plugins.configure("demo", "webhook", config)
        assert await svc.plugins.targets(tenant, AUDIT_EVENT) == []
        await svc.plugins.configure("demo", "webhook", {**config, "events": [AUDIT_EVENT]})
        svc.plugins._configs.clear()  # the 5-second config cache: read the new one now

        async def queued_actions() -> list[str]:
            items = await svc.store.list_events(tenant_id="demo", limit=1000)
            payloads = [await svc.plugins.decode(i) for i in items if i.event_type == AUDIT_EVENT]
            return [p["action"] for p in payloads if p is not None]

        await svc.auditor.record(
            "plugin.dead_lettered",
            tenant_id="demo",
            actor="system",
            target="webhook",
            event_type=AUDIT_EVENT,
        )
        await svc.auditor.record("transcript.opened", tenant_id="demo", actor="agt_x")
        actions = await queued_actions()
        assert actions.count("transcript.opened") == 1
        assert "plugin.dead_lettered" not in actions
    finally:
        await runner.cleanup()
        await hook.close()
