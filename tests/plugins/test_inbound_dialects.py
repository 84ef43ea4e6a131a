"""Pure parts of the inbound API (issue 17): how vendor words map to commands, how a
Freshdesk automation's token and timestamp are read. No I/O."""

from __future__ import annotations

import base64

import pytest

from gateway.http.inbound import event_time, presented_token, token_ok
from plugins import freshdesk, zendesk
from plugins._inbound import GENERIC, DialectError

TOKEN = "a" * 40


@pytest.mark.parametrize(
    ("public", "expected"),
    [("false", "note"), ("true", "reply"), (False, "note"), (True, "reply"), (None, "note")],
)
def test_comment_visibility_unknown_means_private(public, expected):
    assert zendesk.INBOUND.command("comment", public, None) == expected


def test_unreadable_visibility_is_refused_not_guessed():
    with pytest.raises(DialectError):
        zendesk.INBOUND.command("comment", "maybe", None)


@pytest.mark.parametrize(
    ("dialect", "status", "expected"),
    [
        (zendesk.INBOUND, "Solved", "handled"),
        (zendesk.INBOUND, "Pending", "handled"),
        (zendesk.INBOUND, "Open", "ignored"),
        (freshdesk.INBOUND, "Resolved", "handled"),
        (freshdesk.INBOUND, "4", "handled"),
        (freshdesk.INBOUND, "2", "ignored"),
        (GENERIC, "Solved", "ignored"),  # the generic dialect says "handled" itself
    ],
)
def test_status_tables(dialect, status, expected):
    assert dialect.command("status", None, status) == expected


def test_only_freshdesk_takes_a_token():
    assert freshdesk.INBOUND.token_auth and not zendesk.INBOUND.token_auth
    assert not GENERIC.token_auth


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Cipherdesk-Token": TOKEN}, TOKEN),
        ({"Authorization": _basic("cipherdesk", TOKEN)}, TOKEN),
        ({"Authorization": _basic(TOKEN, "X")}, TOKEN),  # Freshdesk's API-key form
        ({"Authorization": f"Bearer {TOKEN}"}, TOKEN),
        ({"Authorization": "Basic not-base64!"}, None),
        ({"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()}, None),
        ({"Authorization": "Digest x"}, None),
        ({"X-Cipherdesk-Token": "x" * 600}, None),
        ({}, None),
    ],
)
def test_presented_token(headers, expected):
    assert presented_token(headers) == expected


def test_token_comparison():
    assert token_ok(TOKEN, TOKEN)
    assert not token_ok(TOKEN, TOKEN[:-1])
    assert not token_ok(TOKEN, None) and not token_ok(TOKEN, "")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_790_000_000, 1_790_000_000.0),
        ("1790000000", 1_790_000_000.0),
        ("2026-09-21T14:13:20Z", 1_790_000_000.0),
        ("Mon, 21 Sep 2026 14:13:20 +0000", 1_790_000_000.0),
        ("2026-09-21T14:13:20", None),  # no zone: cannot be checked against the window
        ("yesterday", None),
        (None, None),
    ],
)
def test_event_time(value, expected):
    assert event_time(value) == expected
