"""Issue 17's "Done when", through a real gateway: a chat opened over a real socket by a
first-time customer creates exactly one Freshdesk ticket (source Chat) and one Zendesk
ticket, although both vendors' first ticket creation succeeds but answers too late
(timeout → dispatcher retry). The chat → ticket mapping lives in the per-plugin
key-value store (migration 0004), sealed."""

from __future__ import annotations

from gateway.sdk.client import CustomerClient
from tests.gateway.helpers import start_gateway
from tests.plugins.fakes import FreshdeskServer, ZendeskServer, eventually


async def test_first_time_customer_one_ticket_each_despite_timeouts(tmp_path):
    zendesk = await ZendeskServer(stall_writes=1, stall_seconds=1.5).start()
    freshdesk = await FreshdeskServer(stall_writes=1, stall_seconds=1.5).start()
    runner, base, svc = await start_gateway(
        tmp_path, plugins={"allow_private_targets": True, "delivery_timeout": 5.0}
    )
    customer = CustomerClient(base, "demo", origin=base, gateway_key=svc.identity.verify_key_b64)
    try:
        # A helpdesk needs the customer's real address to file the ticket under: the tenant
        # shows e-mails to plugins (the default masks them for that audience).
        tenant = await svc.store.get_tenant("demo")
        assert tenant is not None
        show_emails = {"audiences": {"email": {"plugin": "show"}}}
        tenant.settings = {**tenant.settings, "policy": show_emails}
        await svc.store.update_tenant(tenant)
        svc.tenants.invalidate("demo")
        host = svc.plugins
        await host.configure(
            "demo",
            "zendesk",
            {
                "base_url": zendesk.url,
                "email": zendesk.email,
                "api_token": zendesk.token,
                "timeout": "0.5",
            },
        )
        await host.configure(
            "demo",
            "freshdesk",
            {
                "base_url": freshdesk.url,
                "api_key": freshdesk.api_key,
                "timeout": "0.5",
                "priority": "2",
            },
        )
        await customer.connect()
        welcome = await customer.open(profile={"name": "Mei Chen", "email": "mei@example.com"})

        async def settled() -> bool:
            pending = await svc.store.list_events(tenant_id="demo", state="pending")
            return not pending and len(zendesk.tickets) >= 1 and len(freshdesk.tickets) >= 1

        await eventually(settled, seconds=30)
        assert len(zendesk.tickets) == 1 and len(freshdesk.tickets) == 1
        [zt] = zendesk.tickets.values()
        [ft] = freshdesk.tickets.values()
        assert zt["external_id"] == welcome.chat and zt["requester_email"] == "mei@example.com"
        assert ft["source"] == 7 and ft["email"] == "mei@example.com" and ft["priority"] == 2
        # the first answers timed out, so each delivery ran twice: the second found the
        # ticket (Zendesk by external_id, Freshdesk by requester + chat) instead of creating
        assert sum(r.method == "POST" for r in zendesk.requests) == 1
        assert (
            sum(r.path == "/api/v2/tickets.json" and r.method == "GET" for r in zendesk.requests)
            == 2
        )
        assert (
            sum(r.path == "/api/v2/tickets" and r.method == "GET" for r in freshdesk.requests) == 2
        )
        delivered = await svc.store.list_events(tenant_id="demo", state="delivered")
        assert sorted(i.plugin for i in delivered) == ["freshdesk", "zendesk"]
        assert await svc.store.list_events(tenant_id="demo", state="dead") == []
        # the mapping is in the plugin's key-value store, sealed at rest
        raw = await svc.store.kv_get("demo", "zendesk", f"chat-ticket:{welcome.chat}", svc.clock())
        assert raw is not None and str(zt["id"]).encode() not in raw
    finally:
        await customer.aclose()
        await runner.cleanup()
        await zendesk.close()
        await freshdesk.close()
