"""The Freshdesk plugin against a fake that answers like Freshdesk (tests/plugins/fakes.py
cites the documentation of each behaviour): a first-time customer (Freshdesk's 400 "There
is no contact matching the given email") gets exactly one ticket with source 7 (Chat),
and a retry after a timeout makes no duplicate although Freshdesk has no idempotency
keys."""

from __future__ import annotations

import base64

import pytest

from plugins.api import (
    ChatClosed,
    ChatOpened,
    ConfigError,
    CustomerIdentity,
    PermanentError,
    RetryableError,
)
from plugins.enrich import run_enrich
from plugins.freshdesk import INFO, create
from plugins.kv import MemoryKV
from plugins.registry import validate_config
from plugins.transcript import as_html, format_transcript

T0 = 1_700_000_000.0
ANN = CustomerIdentity(user_id="u1", name="Ann Lee", email="ann@example.com", verified=True)


def opened(customer=ANN, chat="chat-7"):
    return ChatOpened(
        tenant_id="acme",
        chat_id=chat,
        occurred_at=T0,
        event_id=f"fo:{chat}",
        queue="billing",
        customer=customer,
    )


def closed(customer=ANN, chat="chat-7"):
    return ChatClosed(
        tenant_id="acme",
        chat_id=chat,
        occurred_at=T0 + 60,
        event_id=f"fc:{chat}",
        transcript=((1, "customer", T0, "id is [national_id] <b>"), (2, "agent", T0 + 3, "ok")),
        close_reason="resolved",
        customer=customer,
    )


def make(server, http, **over):
    return create({"base_url": server.url, **over}, {"api_key": server.api_key}, http)


def auth(server):
    return "Basic " + base64.b64encode(f"{server.api_key}:X".encode()).decode()


async def test_first_time_customer_gets_exactly_one_chat_ticket(freshdesk, http):
    plugin = make(freshdesk, http)
    await plugin.deliver(opened())
    listing, post = freshdesk.requests
    assert listing.path == "/api/v2/tickets" and listing.query == {
        "email": "ann@example.com",
        "order_by": "created_at",
        "order_type": "desc",
    }
    assert listing.headers["Authorization"] == auth(freshdesk)
    assert post.method == "POST" and post.path == "/api/v2/tickets"
    assert post.json["source"] == 7  # Chat
    assert post.json["email"] == "ann@example.com" and post.json["name"] == "Ann Lee"
    assert post.json["subject"] == "Chat chat-7 (2023-11-14)"
    assert post.json["status"] == 2 and post.json["priority"] == 1
    assert "custom_fields" not in post.json  # no chat_field configured
    await plugin.deliver(closed())
    [tid] = freshdesk.tickets
    [note] = freshdesk.notes
    assert note["ticket_id"] == tid and note["private"] is True
    assert note["body"] == as_html(format_transcript(closed()) + "\n\n[cipherdesk event fc:chat-7]")
    assert "&lt;b&gt;" in note["body"]  # HTML-escaped masked text


async def test_unknown_contact_is_not_a_dead_letter(freshdesk, http):
    """The list call answers 400 for a new customer, exactly like Freshdesk."""
    async with http.get(
        f"{freshdesk.url}/api/v2/tickets",
        params={"email": "new@x.test"},
        headers={"Authorization": auth(freshdesk)},
    ) as r:
        assert r.status == 400
        body = await r.json()
    assert body["errors"][0]["message"] == "There is no contact matching the given email"
    await make(freshdesk, http).deliver(closed(customer=CustomerIdentity(email="new@x.test")))
    [ticket] = freshdesk.tickets.values()
    assert ticket["email"] == "new@x.test" and ticket["source"] == 7


@pytest.mark.parametrize("chat_field", [None, "cf_cipherdesk_chat"])
async def test_timeout_after_create_makes_no_duplicate(freshdesk, http, chat_field):
    """Freshdesk has no idempotency keys: the ticket was created but the answer timed out;
    the retry (another node: empty mapping) finds it by requester + chat marker."""
    over = {"timeout": 0.2} | ({"chat_field": chat_field} if chat_field else {})
    freshdesk.stall_writes, freshdesk.stall_seconds = 1, 0.5
    with pytest.raises(RetryableError, match="network error"):
        await make(freshdesk, http, **over).deliver(opened())
    assert len(freshdesk.tickets) == 1
    retry = make(freshdesk, http, **over)
    retry.kv = MemoryKV()
    await retry.deliver(opened())
    await retry.deliver(closed())
    assert len(freshdesk.tickets) == 1 and len(freshdesk.notes) == 1
    if chat_field:
        [ticket] = freshdesk.tickets.values()
        assert ticket["custom_fields"] == {chat_field: "chat-7"}


async def test_note_timeout_is_not_posted_twice(freshdesk, http):
    plugin = make(freshdesk, http, timeout=0.2)
    await plugin.deliver(opened())
    freshdesk.stall_writes, freshdesk.stall_seconds = 1, 0.5
    with pytest.raises(RetryableError):
        await plugin.deliver(closed())
    await plugin.deliver(closed())
    assert len(freshdesk.notes) == 1
    assert freshdesk.requests[-1].path.endswith("/conversations")


async def test_anonymous_chat_uses_fallback_email_or_fails_permanently(freshdesk, http):
    await make(freshdesk, http, fallback_email="chats@acme.test").deliver(closed(customer=None))
    post = freshdesk.writes()[0]
    assert post.json["email"] == "chats@acme.test" and "name" not in post.json
    with pytest.raises(PermanentError, match="no requester e-mail"):
        await make(freshdesk, http).deliver(closed(customer=None, chat="chat-8"))


def test_priority_outside_1_to_4_is_refused_at_configuration():
    for bad in ("0", "5", "-1"):
        with pytest.raises(ConfigError) as info:
            validate_config(INFO, {"domain": "acme", "api_key": "k", "priority": bad})
        assert info.value.field == "priority"
    config, _ = validate_config(INFO, {"domain": "acme", "api_key": "k", "priority": "4"})
    assert config["priority"] == 4
    with pytest.raises(ConfigError, match="must match"):
        validate_config(INFO, {"domain": "acme", "api_key": "k", "chat_field": "Chat Id"})


async def test_auth_and_validation_errors_are_permanent_with_the_vendor_code(freshdesk, http):
    bad = create({"base_url": freshdesk.url}, {"api_key": "nope"}, http)
    with pytest.raises(PermanentError, match=r"HTTP 401 .*\[invalid_credentials\]"):
        await bad.deliver(closed())
    assert not (await bad.health()).ok
    # a custom field the account does not have: Freshdesk's invalid_field, no body text
    plugin = make(freshdesk, http, chat_field="cf_missing")
    with pytest.raises(PermanentError) as info:
        await plugin.deliver(opened())
    assert str(info.value) == "freshdesk: HTTP 400 bad request [invalid_field]"


async def test_rate_limit_carries_retry_after(freshdesk, http):
    freshdesk.fail = [(429, {"Retry-After": "60"})]
    with pytest.raises(RetryableError) as exc:
        await make(freshdesk, http).deliver(closed())
    assert exc.value.retry_after == 60.0


async def test_health_and_enrich(freshdesk, http):
    tid = freshdesk.add_ticket("ann@example.com", 3, subject="Late parcel")
    freshdesk.add_ticket("ann@example.com", 5)
    plugin = make(freshdesk, http)
    assert (await plugin.health()).ok
    assert await run_enrich(plugin, ANN) == {
        "open_tickets": [
            {
                "id": tid,
                "subject": "Late parcel",
                "status": 3,
                "url": f"{freshdesk.url}/a/tickets/{tid}",
            }
        ]
    }
    assert await run_enrich(plugin, CustomerIdentity(email="nobody@x.test")) == {"open_tickets": []}
