from __future__ import annotations

import dataclasses

import pytest

from plugins.api import (
    API_VERSION,
    AgentAssigned,
    ChatClosed,
    ChatOpened,
    ChatTransferred,
    ConfigError,
    CustomerIdentity,
    MessagePosted,
    PolicyFlagRaised,
    TranscriptLine,
    event_from_dict,
    event_to_dict,
)
from plugins.registry import redacted_config, validate_config
from plugins.webhook import INFO as WEBHOOK_INFO
from plugins.zendesk import INFO as ZENDESK_INFO

BASE = {"tenant_id": "acme", "chat_id": "c1", "occurred_at": 1700000000.0, "event_id": "e1"}
WHO = CustomerIdentity(user_id="u1", name="Ann", email="ann@example.com", verified=True)

EVENTS = [
    ChatOpened(**BASE, queue="billing", verified=True, customer=WHO),
    MessagePosted(
        **BASE,
        seq=3,
        sender="customer",
        text="card [card]",
        policy_action="mask",
        policy_kinds=("card",),
    ),
    AgentAssigned(**BASE, agent_id="a1", agent_name="Bob", queue_seconds=12.5),
    ChatTransferred(**BASE, from_agent_id="a1", to_queue="tier2", reason="escalation"),
    ChatClosed(
        **BASE,
        transcript=((1, "customer", 1700000001.0, "hi"), (2, "agent", 1700000002.0, "hello")),
        csat=4,
        queue_seconds=30.0,
        close_reason="resolved",
        customer=WHO,
    ),
    PolicyFlagRaised(**BASE, seq=5, kinds=("keyword:threat",)),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.type)
def test_event_round_trip(event):
    data = event_to_dict(event)
    assert data["type"] == event.type
    assert data["api_version"] == API_VERSION
    assert event_from_dict(data) == event


def test_events_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        EVENTS[0].chat_id = "other"  # type: ignore[misc]


def test_transcript_lines_normalised():
    closed = EVENTS[4]
    assert closed.transcript[0] == TranscriptLine(
        seq=1, sender="customer", ts=1700000001.0, text="hi"
    )
    data = event_to_dict(closed)
    assert data["transcript"][1] == {
        "seq": 2,
        "sender": "agent",
        "ts": 1700000002.0,
        "text": "hello",
    }


def test_policy_flag_never_carries_original():
    fields = {f.name for f in dataclasses.fields(PolicyFlagRaised)}
    assert "original" not in fields and "text" not in fields


def test_from_dict_rejects_unknown_and_malformed():
    with pytest.raises(ValueError, match="unknown event type"):
        event_from_dict({"type": "chat.exploded"})
    with pytest.raises(ValueError, match="malformed"):
        event_from_dict({"type": "chat.message", **BASE})  # seq/sender/text missing


def test_from_dict_ignores_unknown_keys():
    data = event_to_dict(EVENTS[1]) | {"added_in_v1_5": True}
    assert event_from_dict(data) == EVENTS[1]


# --------------------------------------------------------------------------- config


def test_validate_config_splits_secrets_and_coerces():
    config, secrets = validate_config(
        WEBHOOK_INFO,
        {
            "url": "https://hooks.example.com/in",
            "secret": "s3cr3t",
            "include_identity": "true",
            "timeout": "2.5",
            "events": "chat.closed,chat.opened",
        },
    )
    assert secrets == {"secret": "s3cr3t"}
    assert config["url"] == "https://hooks.example.com/in"
    assert config["include_identity"] is True
    assert config["timeout"] == 2.5
    assert config["events"] == ["chat.closed", "chat.opened"]
    assert "secret" not in config


def test_validate_config_defaults_are_copies():
    a, _ = validate_config(ZENDESK_INFO, {"subdomain": "x", "email": "a@b.co", "api_token": "t"})
    a["tags"].append("mutated")
    b, _ = validate_config(ZENDESK_INFO, {"subdomain": "x", "email": "a@b.co", "api_token": "t"})
    assert b["tags"] == ["cipherdesk"]


@pytest.mark.parametrize(
    ("values", "field", "fragment"),
    [
        ({"secret": "x"}, "url", "is required"),
        ({"url": "ftp://x", "secret": "x"}, "url", "http(s) URL"),
        ({"url": "https://x.test", "secret": "x", "colour": "red"}, "colour", "unknown setting"),
        ({"url": "https://x.test", "secret": "x", "timeout": "soon"}, "timeout", "number"),
        (
            {"url": "https://x.test", "secret": "x", "include_identity": "maybe"},
            "include_identity",
            "boolean",
        ),
        (
            {"url": "https://x.test", "secret": "x", "events": "chat.closed,chat.bogus"},
            "events",
            "allowed values",
        ),
    ],
)
def test_validate_config_errors_name_the_field(values, field, fragment):
    with pytest.raises(ConfigError) as info:
        validate_config(WEBHOOK_INFO, values)
    assert info.value.field == field
    assert f"field {field!r}" in str(info.value)
    assert fragment in str(info.value)


def test_secret_values_never_echoed_in_errors():
    info = dataclasses.replace(
        WEBHOOK_INFO,
        config_schema=(
            *WEBHOOK_INFO.config_schema[:1],
            dataclasses.replace(WEBHOOK_INFO.config_schema[1], type="int"),
        ),
    )
    with pytest.raises(ConfigError) as exc:
        validate_config(info, {"url": "https://x.test", "secret": "hunter2-very-secret"})
    assert "hunter2" not in str(exc.value)


def test_required_secret_may_come_from_existing_secrets():
    config, secrets = validate_config(
        WEBHOOK_INFO, {"url": "https://x.test"}, existing_secrets={"secret": "kept"}
    )
    assert secrets["secret"] == "kept"
    assert redacted_config(WEBHOOK_INFO, {**config, **secrets})["secret"] == "***"


def test_chat_closed_carries_the_privacy_notice_consent_both_ways() -> None:
    from plugins.api import ChatClosed, NoticeConsent, event_from_dict, event_to_dict
    from plugins.transcript import format_transcript

    event = ChatClosed(
        tenant_id="t",
        chat_id="c1",
        event_id="e1",
        occurred_at=1_700_000_100.0,
        consent=NoticeConsent(notice_version=3, at=1_700_000_000.0),
    )
    data = event_to_dict(event)
    assert data["consent"] == {"notice_version": 3, "at": 1_700_000_000.0}
    assert event_from_dict(data) == event
    assert event_from_dict({**data, "consent": None}).consent is None
    assert "Privacy notice: version 3 accepted" in format_transcript(event)
