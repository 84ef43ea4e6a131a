from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from plugins import __version__
from plugins.api import ChatClosed, MessagePosted, PermanentError, RetryableError
from plugins.webhook import (
    WebhookPlugin,
    encode_body,
    sign,
    signature_header,
    verify_signature,
)

NOW = 1_700_000_000
BODY = b'{"type":"chat.closed"}'


def test_signature_matches_the_documented_formula():
    header = signature_header(["whsec"], NOW, BODY)
    expected = hmac.new(b"whsec", f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={NOW},v1={expected}"
    assert verify_signature("whsec", header, BODY, now=NOW)


@pytest.mark.parametrize(
    "case",
    [
        "tampered_body",
        "tampered_ts",
        "expired",
        "future",
        "wrong_secret",
        "no_v1",
        "garbage",
        "empty",
    ],
)
def test_verify_refuses(case):
    header = signature_header(["whsec"], NOW, BODY)
    body, secret, now = BODY, "whsec", NOW
    if case == "tampered_body":
        body = BODY.replace(b"closed", b"opened")
    elif case == "tampered_ts":
        header = header.replace(f"t={NOW}", f"t={NOW + 1}")
    elif case == "expired":
        now = NOW + 301
    elif case == "future":
        now = NOW - 301
    elif case == "wrong_secret":
        secret = "other"
    elif case == "no_v1":
        header = f"t={NOW}"
    elif case == "garbage":
        header = "t=abc,v1=zz"
    elif case == "empty":
        header = ""
    assert not verify_signature(secret, header, body, now=now)


def test_verify_tolerance_edges_and_custom_window():
    header = signature_header(["whsec"], NOW, BODY)
    assert verify_signature("whsec", header, BODY, now=NOW + 300)
    assert not verify_signature("whsec", header, BODY, now=NOW + 61, tolerance=60)


def test_rotation_several_v1_entries_and_several_receiver_secrets():
    header = signature_header(["new", "old"], NOW, BODY)
    assert header.count("v1=") == 2
    assert verify_signature("old", header, BODY, now=NOW)  # receiver not yet rotated
    assert verify_signature("new", header, BODY, now=NOW)
    only_new = signature_header(["new"], NOW, BODY)
    assert verify_signature(["old", "new"], only_new, BODY, now=NOW)  # receiver knows both
    assert not verify_signature(["old"], only_new, BODY, now=NOW)


def _closed(**kw):
    return ChatClosed(
        tenant_id="acme",
        chat_id="c1",
        occurred_at=NOW,
        event_id="wh:e1",
        transcript=((1, "customer", NOW, "my card is [card]"),),
        csat=5,
        **kw,
    )


async def test_delivery_sends_exact_request(receiver, http, clock):
    plugin = WebhookPlugin(
        {"url": receiver.url + "/hook"}, {"secret": receiver.secret}, http, clock=clock
    )
    event = _closed()
    await plugin.deliver(event)
    [req] = receiver.requests
    assert req.method == "POST" and req.path == "/hook"
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["Idempotency-Key"] == "wh:e1"
    assert req.headers["X-Cipherdesk-Event"] == "chat.closed"
    assert req.headers["User-Agent"] == f"cipherdesk/{__version__}"
    t = int(clock())
    assert req.headers["X-Cipherdesk-Signature"] == (
        f"t={t},v1={sign(receiver.secret, t, req.body)}"
    )
    assert req.body == encode_body(event)
    assert json.loads(req.body)["transcript"][0]["text"] == "my card is [card]"
    assert receiver.accepted == {"wh:e1": json.loads(req.body)}


async def test_receiver_rejects_replay_outside_window(receiver, http, clock):
    plugin = WebhookPlugin(
        {"url": receiver.url + "/hook"}, {"secret": receiver.secret}, http, clock=clock
    )
    await plugin.deliver(_closed())
    old = receiver.requests[0]
    clock.advance(600)  # an attacker replays the captured request 10 minutes later
    async with http.post(
        receiver.url + "/hook",
        data=old.body,
        headers={
            "X-Cipherdesk-Signature": old.headers["X-Cipherdesk-Signature"],
            "Idempotency-Key": "replayed",
            "Content-Type": "application/json",
        },
    ) as resp:
        assert resp.status == 400
    assert receiver.rejected == 1


async def test_status_mapping(receiver, http, clock):
    plugin = WebhookPlugin(
        {"url": receiver.url + "/hook"}, {"secret": receiver.secret}, http, clock=clock
    )
    receiver.fail = [(503, {}), (429, {"Retry-After": "7"}), (410, {})]
    with pytest.raises(RetryableError) as e503:
        await plugin.deliver(_closed())
    assert e503.value.retry_after is None
    with pytest.raises(RetryableError) as e429:
        await plugin.deliver(_closed())
    assert e429.value.retry_after == 7.0
    with pytest.raises(PermanentError, match="HTTP 410"):
        await plugin.deliver(_closed())


async def test_network_error_is_retryable(http):
    plugin = WebhookPlugin({"url": "http://127.0.0.1:9/hook"}, {"secret": "s"}, http)
    with pytest.raises(RetryableError, match="network error"):
        await plugin.deliver(_closed())


def test_instance_scopes_follow_config(http):
    p = WebhookPlugin({"url": "https://x.test", "events": ["chat.closed"]}, {"secret": "s"}, http)
    assert p.info.scopes == {"chat.closed"}
    p = WebhookPlugin({"url": "https://x.test", "include_identity": True}, {"secret": "s"}, http)
    assert "customer.identity" in p.info.scopes and "chat.message" in p.info.scopes
    p = WebhookPlugin({"url": "https://x.test"}, {"secret": "hunter2"}, http)
    assert "hunter2" not in repr(p)


def test_message_event_body_has_masked_text_only():
    ev = MessagePosted(
        tenant_id="t",
        chat_id="c",
        occurred_at=1.0,
        event_id="k",
        seq=1,
        sender="customer",
        text="call me at [phone]",
        policy_action="mask",
        policy_kinds=("phone",),
    )
    assert json.loads(encode_body(ev))["text"] == "call me at [phone]"
