"""Masking per audience: the agent, plugins/helpdesks and exports see what the table says."""

from __future__ import annotations

import pytest

from gateway.policy import PolicyConfig, PolicyConfigError, PolicyEngine
from gateway.policy.describe import effective_table
from gateway.policy.fields import REMOVED, screen_text

TEXT = "call 13812345678 or zhang.san@example.com; card 4111 1111 1111 1111"


def test_defaults_mask_phone_and_email_for_plugins_and_exports_only() -> None:
    engine = PolicyEngine(PolicyConfig())
    d = engine.evaluate(TEXT, "customer")
    assert d.text == "call 13812345678 or zhang.san@example.com; card **** **** **** 1111"
    for audience in ("plugin", "export"):
        assert engine.for_audience(TEXT, d, audience) == (
            "call 138****5678 or z****.***@example.com; card **** **** **** 1111"
        )


def test_tenant_overrides_per_kind_and_audience() -> None:
    engine = PolicyEngine(
        PolicyConfig.from_dict(
            {
                "audiences": {
                    "phone": {"plugin": "show"},
                    "email": "drop",
                    "card": {"export": "drop"},
                }
            }
        )
    )
    d = engine.evaluate(TEXT, "customer")
    assert engine.for_audience(TEXT, d, "plugin") == (
        "call 13812345678 or [redacted]; card **** **** **** 1111"
    )
    assert engine.for_audience(TEXT, d, "export") == (
        "call 138****5678 or [redacted]; card [redacted]"
    )
    table = {row["kind"]: row for row in effective_table(engine.config)}
    assert table["phone"]["plugin"] == "show" and table["phone"]["export"] == "mask"
    assert table["email"]["plugin"] == "drop" and table["card"]["log"] == "never"


def test_plugins_never_see_more_than_the_agent() -> None:
    engine = PolicyEngine(PolicyConfig.from_dict({"audiences": {"card": "show"}}))
    d = engine.evaluate(TEXT, "customer")
    assert "4111 1111 1111 1111" not in engine.for_audience(TEXT, d, "plugin")


def test_typed_fields_and_blocked_messages() -> None:
    engine = PolicyEngine(PolicyConfig())
    assert engine.mask_field("name", "张三丰", "plugin") == "张**"
    assert engine.mask_field("name", "Ann Buyer", "plugin") == "A** B****"
    assert engine.mask_field("email", "zoe@example.com", "plugin") == "z**@example.com"
    assert engine.mask_field("email", "zoe@example.com", "agent") == "zoe@example.com"
    blocked = engine.evaluate("card 4111 1111 1111 1111", "agent")
    assert engine.for_audience("card 4111 1111 1111 1111", blocked, "plugin") is None


@pytest.mark.parametrize(
    "bad",
    [
        {"audiences": {"phone": {"logs": "show"}}},
        {"audiences": {"phone": "reveal"}},
        {"audiences": []},
    ],
)
def test_bad_audience_settings_are_refused(bad: dict) -> None:
    with pytest.raises(PolicyConfigError, match=r"policy\.audiences"):
        PolicyConfig.from_dict(bad)


def test_a_field_meant_for_a_name_keeps_it_and_nothing_else() -> None:
    engine = PolicyEngine()
    name = frozenset({"name"})
    # free text: the name is masked for exports; a display name keeps it
    assert screen_text(engine, "Mr. John Smith", "agent", "export") == "Mr. J*** S****"
    assert screen_text(engine, "Mr. John Smith", "agent", "export", expected=name) == (
        "Mr. John Smith"
    )
    assert screen_text(engine, "张伟先生 13800138000", "agent", "export", expected=name) == (
        "张伟先生 138****8000"
    )
    assert screen_text(engine, "张伟 4111 1111 1111 1111", "agent", expected=name) == REMOVED
    decision = engine.evaluate("我叫张伟", "agent")
    assert engine.without("我叫张伟", decision, name, "agent").action == "allow"
    assert engine.without("我叫张伟", decision, frozenset({"card"}), "agent") is decision
