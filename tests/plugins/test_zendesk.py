"""The Zendesk plugin against a fake that answers like Zendesk (tests/plugins/fakes.py
cites the documentation of each behaviour): one ticket per chat, exactly once — through
search-index lag, idempotency-key expiry, timeouts that hide a success, non-idempotent
comment updates and closed tickets."""

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
from plugins.kv import MemoryKV
from plugins.transcript import format_transcript
from plugins.zendesk import ZendeskPlugin, create

T0 = 1_700_000_000.0
ANN = CustomerIdentity(user_id="u1", name="Ann Lee", email="ann@example.com", verified=True)


def opened(customer=ANN, chat="chat-7"):
    return ChatOpened(
        tenant_id="acme",
        chat_id=chat,
        occurred_at=T0,
        event_id=f"zo:{chat}",
        queue="billing",
        customer=customer,
    )


def closed(customer=ANN, chat="chat-7"):
    return ChatClosed(
        tenant_id="acme",
        chat_id=chat,
        occurred_at=T0 + 60,
        event_id=f"zc:{chat}",
        transcript=((1, "customer", T0, "my card is [card]"), (2, "agent", T0 + 3, "ok")),
        close_reason="resolved",
        customer=customer,
    )


def make(server, http, kv=None, timeout=10.0):
    plugin = create(
        {"base_url": server.url, "email": server.email, "timeout": timeout},
        {"api_token": server.token},
        http,
    )
    if kv is not None:
        plugin.kv = kv
    return plugin


def auth(server):
    token = f"{server.email}/token:{server.token}".encode()
    return "Basic " + base64.b64encode(token).decode()


async def test_first_time_customer_gets_exactly_one_ticket(zendesk, http):
    plugin = make(zendesk, http)
    await plugin.deliver(opened())
    lookup, post = zendesk.requests
    assert (lookup.method, lookup.path, lookup.query) == (
        "GET",
        "/api/v2/tickets.json",
        {"external_id": "chat-7"},
    )
    assert post.method == "POST" and post.path == "/api/v2/tickets.json"
    assert post.headers["Authorization"] == auth(zendesk)
    assert post.headers["Idempotency-Key"] == "zo:chat-7"
    ticket = post.json["ticket"]
    assert ticket["external_id"] == "chat-7" and ticket["tags"] == ["cipherdesk"]
    assert ticket["requester"] == {"name": "Ann Lee", "email": "ann@example.com"}
    assert ticket["comment"]["public"] is False
    await plugin.deliver(closed())  # the close lands on the same ticket
    [tid] = zendesk.tickets
    bodies = [c["body"] for c in zendesk.tickets[tid]["comments"]]
    assert len(bodies) == 2 and bodies[1].startswith(format_transcript(closed()))
    assert bodies[1].endswith("[cipherdesk event zc:chat-7]")
    assert "[card]" in bodies[1]  # masked text only


async def test_timeout_after_create_and_expired_idempotency_key_make_no_duplicate(
    zendesk, http, clock
):
    """Zendesk commits the ticket but the answer comes too late; the dispatcher retries
    more than two hours later, when Zendesk has forgotten the idempotency key and the
    search index may not show the ticket: the external-id lookup still finds it."""
    zendesk.clock = clock
    zendesk.stall_writes, zendesk.stall_seconds = 1, 0.5
    plugin = make(zendesk, http, kv=MemoryKV(clock), timeout=0.2)
    with pytest.raises(RetryableError, match="network error"):
        await plugin.deliver(opened())
    assert len(zendesk.tickets) == 1  # it was created all the same
    clock.advance(3 * 3600)  # idempotency key expired
    await plugin.deliver(opened())
    await plugin.deliver(closed())
    assert len(zendesk.tickets) == 1
    [ticket] = zendesk.tickets.values()
    assert len(ticket["comments"]) == 2


async def test_search_lag_cannot_split_a_chat(zendesk, http, clock):
    """Search does not see a ticket created seconds ago (index lag); the plugin never
    relies on it to find the chat's ticket."""
    zendesk.clock = clock
    first = make(zendesk, http, kv=MemoryKV(clock))
    await first.deliver(opened())
    assert await first.open_tickets("ann@example.com") == []  # not indexed yet
    second = make(zendesk, http, kv=MemoryKV(clock))  # another node, empty mapping
    await second.deliver(closed())
    assert len(zendesk.tickets) == 1


async def test_comment_timeout_is_not_posted_twice(zendesk, http):
    plugin = make(zendesk, http, timeout=0.2)
    await plugin.deliver(opened())
    zendesk.stall_writes, zendesk.stall_seconds = 1, 0.5
    with pytest.raises(RetryableError):
        await plugin.deliver(closed())  # the PUT went through; its answer timed out
    await plugin.deliver(closed())  # the retry finds the marker and adds nothing
    [ticket] = zendesk.tickets.values()
    assert len(ticket["comments"]) == 2
    assert zendesk.requests[-1].path.endswith("/comments.json")


async def test_closed_ticket_continues_in_a_follow_up(zendesk, http):
    plugin = make(zendesk, http)
    await plugin.deliver(opened())
    [tid] = zendesk.tickets
    zendesk.tickets[tid]["status"] = "closed"
    await plugin.deliver(closed())  # PUT answers 422 "Status: closed prevents ticket update"
    assert len(zendesk.tickets) == 2
    follow = zendesk.tickets[max(zendesk.tickets)]
    assert follow["followup_of"] == tid and follow["external_id"] == "chat-7"
    assert follow["comments"][0]["body"].endswith("[cipherdesk event zc:chat-7]")
    assert await plugin.kv.get("chat-ticket:chat-7") == str(max(zendesk.tickets))


async def test_without_identity_creates_ticket_without_requester(zendesk, http):
    await make(zendesk, http).deliver(closed(customer=None))
    _lookup, post = zendesk.requests  # created with the transcript: no second comment
    assert "requester" not in post.json["ticket"]
    assert post.json["ticket"]["comment"]["body"] == (
        format_transcript(closed()) + "\n\n[cipherdesk event zc:chat-7]"
    )


@pytest.mark.parametrize("status", [401, 403, 404, 422])
async def test_client_errors_are_permanent_and_safe(zendesk, http, status):
    zendesk.fail = [(status, {})]
    with pytest.raises(PermanentError) as exc:
        await make(zendesk, http).deliver(closed(customer=None))
    assert str(exc.value).startswith(f"zendesk: HTTP {status} ")
    assert str(exc.value).endswith("[InvalidEndpoint]")  # Zendesk's error code, no body
    assert zendesk.token not in str(exc.value) and "card" not in str(exc.value)


async def test_bad_token_is_a_real_401(zendesk, http):
    plugin = create({"base_url": zendesk.url, "email": zendesk.email}, {"api_token": "wrong"}, http)
    with pytest.raises(PermanentError, match="HTTP 401 authentication failed"):
        await plugin.deliver(closed())
    health = await plugin.health()
    assert not health.ok and "401" in health.detail


@pytest.mark.parametrize(
    ("status", "headers", "retry_after"),
    [(429, {"Retry-After": "93"}, 93.0), (500, {}, None), (503, {"Retry-After": "5"}, 5.0)],
)
async def test_transient_errors_are_retryable(zendesk, http, status, headers, retry_after):
    zendesk.fail = [(status, headers)]
    with pytest.raises(RetryableError) as exc:
        await make(zendesk, http).deliver(closed())
    assert exc.value.retry_after == retry_after
    assert str(exc.value) == f"zendesk: HTTP {status}" + (" rate limited" if status == 429 else "")


async def test_health_and_enrich(zendesk, http):
    tid = zendesk.add_ticket("ann@example.com", "pending", subject="Refund")
    plugin = make(zendesk, http)
    assert (await plugin.health()).ok
    data = await run_enrich(plugin, ANN)
    assert data == {
        "open_tickets": [
            {
                "id": tid,
                "subject": "Refund",
                "status": "pending",
                "url": f"{zendesk.url}/agent/tickets/{tid}",
            }
        ]
    }


def test_base_url_from_subdomain(http):
    p = ZendeskPlugin({"subdomain": "acme", "email": "a@b.co"}, {"api_token": "t"}, http)
    assert p._base == "https://acme.zendesk.com"
    with pytest.raises(ConfigError, match="subdomain"):
        ZendeskPlugin({"email": "a@b.co"}, {"api_token": "t"}, http)
