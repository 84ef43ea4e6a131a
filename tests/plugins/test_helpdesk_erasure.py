"""A customer's erasure reaches the helpdesks (issue 15.2: "a deletion request sent through
the plugins to the helpdesk (Zendesk/Freshdesk user deletion APIs) where the tenant enables
it"), through a real gateway and the vendor fakes: the chats are crypto-shredded, then the
durable outbox carries ``customer.erased`` (sealed under the tenant-event key: the chats'
keys are gone) to the helpdesk plugins that have ``delete_customers`` on. Zendesk deletes
and then permanently deletes the end user (never an agent with the same address);
Freshdesk hard-deletes the contact with its tickets; a plugin without the option gets
nothing; a tenant that masks e-mails for plugins gets a dead letter saying why."""

from __future__ import annotations

from typing import Any

from gateway.sdk.client import CustomerClient
from tests.gateway.helpers import start_gateway
from tests.plugins.fakes import FreshdeskServer, ZendeskServer, eventually

EMAIL = "mei@example.com"


async def _gateway(tmp_path: Any, show_emails: bool) -> tuple[Any, str, Any]:
    runner, base, svc = await start_gateway(
        tmp_path, plugins={"allow_private_targets": True, "delivery_timeout": 5.0}
    )
    if show_emails:  # helpdesks file tickets under the real address (the default masks it)
        tenant = await svc.store.get_tenant("demo")
        assert tenant is not None
        tenant.settings = {
            **tenant.settings,
            "policy": {"audiences": {"email": {"plugin": "show"}}},
        }
        await svc.store.update_tenant(tenant)
        svc.tenants.invalidate("demo")
    return runner, base, svc


async def _chat(base: str, svc: Any) -> str:
    customer = CustomerClient(base, "demo", origin=base, gateway_key=svc.identity.verify_key_b64)
    try:
        await customer.connect()
        welcome = await customer.open(profile={"name": "Mei Chen", "email": EMAIL})
        await customer.send_text("hello")
        return str(welcome.chat)
    finally:
        await customer.aclose()


async def test_an_erased_customer_is_deleted_in_the_helpdesks(tmp_path):
    zendesk = await ZendeskServer().start()
    freshdesk = await FreshdeskServer().start()
    runner, base, svc = await _gateway(tmp_path, show_emails=True)
    try:
        await svc.plugins.configure(
            "demo",
            "zendesk",
            {
                "base_url": zendesk.url,
                "email": zendesk.email,
                "api_token": zendesk.token,
                "delete_customers": True,
            },
        )
        await svc.plugins.configure(
            "demo",
            "freshdesk",
            {"base_url": freshdesk.url, "api_key": freshdesk.api_key, "delete_customers": True},
        )
        agent_id = zendesk.add_user(EMAIL.replace("mei", "mei.agent"), role="agent")
        chat = await _chat(base, svc)

        async def ticketed() -> bool:
            return bool(zendesk.tickets) and bool(freshdesk.tickets)

        await eventually(ticketed, seconds=20)
        # An agent account that happens to share the address is never a customer's.
        shared = zendesk.add_user("agent.shared@example.com", role="agent")
        zendesk.users[shared]["email"] = EMAIL

        report = await svc.chats.erase_customer("demo", "email", EMAIL, actor="admin-test")
        assert report.document()["report"]["counts"] == {"chats": 1}
        assert await svc.chats.keys.get(chat) is None  # crypto-shredded before the request

        async def deleted() -> bool:
            purged = [u for u in zendesk.users.values() if u["state"] == "purged"]
            return bool(purged) and freshdesk.deleted_contacts == [EMAIL]

        await eventually(deleted, seconds=30)
        (purged,) = [u for u in zendesk.users.values() if u["state"] == "purged"]
        assert purged["role"] == "end-user"
        assert zendesk.users[shared]["state"] == "active"  # the agent with that address
        assert zendesk.users[agent_id]["state"] == "active"
        # Zendesk: soft delete first, then the permanent delete (the vendor demands it).
        deletes = [r.path for r in zendesk.requests if r.method == "DELETE"]
        assert deletes == [
            f"/api/v2/users/{purged['id']}.json",
            f"/api/v2/deleted_users/{purged['id']}.json",
        ]
        assert freshdesk.tickets == {}  # hard delete takes the contact's tickets along
        delivered = await svc.store.list_events(tenant_id="demo", state="delivered")
        erasures = [i for i in delivered if i.event_type == "customer.erased"]
        assert sorted(i.plugin for i in erasures) == ["freshdesk", "zendesk"]
        assert all(i.chat_id is None for i in erasures)
    finally:
        await runner.cleanup()
        await zendesk.close()
        await freshdesk.close()


async def test_no_option_no_request_and_a_masked_address_is_a_dead_letter(tmp_path):
    zendesk = await ZendeskServer().start()
    freshdesk = await FreshdeskServer().start()
    runner, base, svc = await _gateway(tmp_path, show_emails=False)
    try:
        await svc.plugins.configure(
            "demo",
            "zendesk",
            {"base_url": zendesk.url, "email": zendesk.email, "api_token": zendesk.token},
        )
        await svc.plugins.configure(
            "demo",
            "freshdesk",
            {"base_url": freshdesk.url, "api_key": freshdesk.api_key, "delete_customers": True},
        )
        await _chat(base, svc)
        await svc.chats.erase_customer("demo", "email", EMAIL, actor="admin-test")

        async def dead() -> bool:
            rows = await svc.store.list_events(tenant_id="demo", state="dead")
            return any(i.event_type == "customer.erased" for i in rows)

        await eventually(dead, seconds=30)
        rows = await svc.store.list_events(tenant_id="demo", limit=100)
        erasures = [i for i in rows if i.event_type == "customer.erased"]
        # Zendesk did not enable deletion: no request for it at all.
        assert [i.plugin for i in erasures] == ["freshdesk"]
        (item,) = erasures
        assert "no usable e-mail" in (item.last_error or "")
        assert not any(r.method == "DELETE" for r in freshdesk.requests)
    finally:
        await runner.cleanup()
        await zendesk.close()
        await freshdesk.close()
