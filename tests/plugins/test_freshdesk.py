from __future__ import annotations

import base64

import pytest

from plugins.api import ChatClosed, CustomerIdentity, PermanentError, RetryableError
from plugins.enrich import run_enrich
from plugins.freshdesk import create
from plugins.transcript import as_html, format_transcript

T0 = 1_700_000_000.0
ANN = CustomerIdentity(user_id="u1", name="Ann Lee", email="ann@example.com", verified=True)


def closed(customer=ANN):
    return ChatClosed(
        tenant_id="acme",
        chat_id="chat-7",
        occurred_at=T0 + 60,
        event_id="fd:e1",
        transcript=((1, "customer", T0, "id is [national_id] <b>"), (2, "agent", T0 + 3, "ok")),
        csat=None,
        close_reason="resolved",
        customer=customer,
    )


def make(server, http, **over):
    return create({"base_url": server.url, **over}, {"api_key": server.api_key}, http)


def auth(server):
    return "Basic " + base64.b64encode(f"{server.api_key}:X".encode()).decode()


async def test_creates_ticket_when_no_open_or_pending_one(freshdesk, http):
    freshdesk.add_ticket("ann@example.com", 4)  # resolved
    freshdesk.add_ticket("ann@example.com", 5)  # closed
    await make(freshdesk, http).deliver(closed())
    listing, post = freshdesk.requests
    assert listing.method == "GET" and listing.path == "/api/v2/tickets"
    assert listing.query == {
        "email": "ann@example.com",
        "order_by": "updated_at",
        "order_type": "desc",
    }
    assert listing.headers["Authorization"] == auth(freshdesk)
    assert post.method == "POST" and post.path == "/api/v2/tickets"
    assert post.headers["Authorization"] == auth(freshdesk)
    assert post.headers["Idempotency-Key"] == "fd:e1"
    body = as_html(format_transcript(closed()))
    assert post.json == {
        "email": "ann@example.com",
        "name": "Ann Lee",
        "subject": "Chat chat-7 (2023-11-14)",
        "description": body,
        "status": 2,
        "priority": 1,
        "tags": ["cipherdesk"],
    }
    assert "&lt;b&gt;" in body and "<br>" in body  # HTML-escaped masked text


@pytest.mark.parametrize("status", [2, 3])
async def test_adds_private_note_to_open_or_pending_ticket(freshdesk, http, status):
    tid = freshdesk.add_ticket("ann@example.com", status)
    await make(freshdesk, http).deliver(closed())
    _, note = freshdesk.requests
    assert note.method == "POST" and note.path == f"/api/v2/tickets/{tid}/notes"
    assert note.json == {"body": as_html(format_transcript(closed())), "private": True}
    assert freshdesk.notes[0]["ticket_id"] == tid


async def test_anonymous_chat_uses_fallback_email_or_fails_permanently(freshdesk, http):
    await make(freshdesk, http, fallback_email="chats@acme.test").deliver(closed(customer=None))
    [post] = freshdesk.requests
    assert post.json["email"] == "chats@acme.test" and "name" not in post.json
    with pytest.raises(PermanentError, match="no requester e-mail"):
        await make(freshdesk, http).deliver(closed(customer=None))


async def test_auth_and_validation_errors_are_permanent(freshdesk, http):
    bad = create({"base_url": freshdesk.url}, {"api_key": "nope"}, http)
    with pytest.raises(PermanentError, match="HTTP 401"):
        await bad.deliver(closed())
    assert not (await bad.health()).ok
    freshdesk.fail = [(400, {})]
    with pytest.raises(PermanentError, match="HTTP 400"):
        await make(freshdesk, http).deliver(closed())


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
