from __future__ import annotations

import base64

import pytest

from plugins import __version__
from plugins.api import ChatClosed, ConfigError, CustomerIdentity, PermanentError, RetryableError
from plugins.enrich import run_enrich
from plugins.transcript import format_transcript
from plugins.zendesk import ZendeskPlugin, create

T0 = 1_700_000_000.0
ANN = CustomerIdentity(user_id="u1", name="Ann Lee", email="ann@example.com", verified=True)


def closed(customer=ANN, event_id="zd:e1"):
    return ChatClosed(
        tenant_id="acme",
        chat_id="chat-9",
        occurred_at=T0 + 60,
        event_id=event_id,
        transcript=((1, "customer", T0, "my card is [card]"), (2, "agent", T0 + 5, "fixed")),
        csat=5,
        queue_seconds=12,
        close_reason="resolved",
        customer=customer,
    )


def make(server, http, **over):
    config = {"base_url": server.url, "email": server.email, **over}
    return create(config, {"api_token": server.token}, http)


def auth(server):
    return "Basic " + base64.b64encode(f"{server.email}/token:{server.token}".encode()).decode()


async def test_creates_ticket_when_requester_has_no_open_one(zendesk, http):
    zendesk.add_ticket("ann@example.com", "solved")  # solved tickets do not count
    await make(zendesk, http).deliver(closed())
    search, post = zendesk.requests
    assert search.method == "GET" and search.path == "/api/v2/search.json"
    assert search.query["query"] == "type:ticket status<solved requester:ann@example.com"
    assert search.headers["Authorization"] == auth(zendesk)
    assert post.method == "POST" and post.path == "/api/v2/tickets.json"
    assert post.headers["Authorization"] == auth(zendesk)
    assert post.headers["Idempotency-Key"] == "zd:e1"
    assert post.headers["User-Agent"] == f"cipherdesk/{__version__}"
    assert post.headers["Content-Type"].startswith("application/json")
    assert post.json == {
        "ticket": {
            "subject": "Chat chat-9 (2023-11-14)",
            "comment": {"body": format_transcript(closed()), "public": False},
            "requester": {"name": "Ann Lee", "email": "ann@example.com"},
            "tags": ["cipherdesk"],
        }
    }
    assert "[card]" in post.json["ticket"]["comment"]["body"]


async def test_appends_private_comment_to_open_ticket(zendesk, http):
    tid = zendesk.add_ticket("ann@example.com", "open")
    await make(zendesk, http).deliver(closed())
    _search, put = zendesk.requests
    assert put.method == "PUT" and put.path == f"/api/v2/tickets/{tid}.json"
    assert put.json == {
        "ticket": {"comment": {"body": format_transcript(closed()), "public": False}}
    }
    assert put.headers["Idempotency-Key"] == "zd:e1"
    assert zendesk.tickets[tid]["comments"] == [put.json["ticket"]["comment"]]
    assert len(zendesk.tickets) == 1


async def test_without_identity_creates_ticket_without_requester(zendesk, http):
    await make(zendesk, http).deliver(closed(customer=None))
    [post] = zendesk.requests  # no search: nothing to search by
    assert post.method == "POST"
    assert "requester" not in post.json["ticket"]


async def test_retried_create_is_deduplicated_by_idempotency_key(zendesk, http):
    plugin = make(zendesk, http)
    await plugin.deliver(closed(customer=None))
    await plugin.deliver(closed(customer=None))  # the dispatcher retried after a timeout
    assert len(zendesk.tickets) == 1


@pytest.mark.parametrize("status", [401, 403, 404, 422])
async def test_client_errors_are_permanent_and_safe(zendesk, http, status):
    zendesk.fail = [(status, {})]
    with pytest.raises(PermanentError) as exc:
        await make(zendesk, http).deliver(closed(customer=None))
    assert f"HTTP {status}" in str(exc.value)
    assert zendesk.token not in str(exc.value) and "card" not in str(exc.value)


async def test_bad_token_is_a_real_401(zendesk, http):
    plugin = create({"base_url": zendesk.url, "email": zendesk.email}, {"api_token": "wrong"}, http)
    with pytest.raises(PermanentError, match="HTTP 401 authentication failed"):
        await plugin.deliver(closed())
    health = await plugin.health()
    assert not health.ok and "401" in health.detail


@pytest.mark.parametrize(
    ("status", "headers", "retry_after"),
    [(429, {"Retry-After": "93"}, 93.0), (500, {}, None), (503, {}, None)],
)
async def test_transient_errors_are_retryable(zendesk, http, status, headers, retry_after):
    zendesk.fail = [(status, headers)]
    with pytest.raises(RetryableError) as exc:
        await make(zendesk, http).deliver(closed())
    assert exc.value.retry_after == retry_after


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
