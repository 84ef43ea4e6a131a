from __future__ import annotations

import pytest

from gateway.policy import Decision, PolicyConfig, PolicyConfigError, PolicyEngine


def test_customer_card_is_masked_with_payment_page_notice(engine: PolicyEngine) -> None:
    d = engine.evaluate("my card is 4111 1111 1111 1111 ok", "customer")
    assert d.action == "mask"
    assert d.text == "my card is **** **** **** 1111 ok"
    assert d.kinds == ("card",)
    assert d.notice is not None and "secure payment page" in d.notice
    f = d.findings[0]
    assert (f.kind, f.start, f.end, f.rule, f.action) == ("card", 11, 30, "card.luhn", "mask")


def test_agent_card_and_id_are_blocked(engine: PolicyEngine) -> None:
    for text in ("card 4111111111111111", "身份证11010519491231002X"):
        d = engine.evaluate(text, "agent")
        assert d.action == "block" and d.text is None and d.notice


def test_secrets_masked_from_customers_blocked_from_agents(engine: PolicyEngine) -> None:
    assert engine.evaluate("验证码 482913", "customer").text == "验证码 ******"
    assert engine.evaluate("验证码 482913", "agent").action == "block"


def test_links_by_direction(engine: PolicyEngine) -> None:
    c = engine.evaluate("go https://evil.com/a?b=1", "customer")
    assert c.action == "mask" and c.text == "go hxxps://evil[.]com/a?b=1"
    assert engine.evaluate("go https://evil.com/a", "agent").action == "block"
    assert engine.evaluate("go https://www.example.com/a", "agent").action == "allow"
    h = engine.evaluate("go https://pаypal.com/a", "customer")
    assert h.action == "flag" and "xn--" in (h.text or "")
    assert (
        engine.evaluate("go https://bank.com@evil.com/", "customer").text
        == "go hxxps://evil[.]com/"
    )


def test_keywords_catch_evasions(engine: PolicyEngine) -> None:
    for text in ("這是安全帳戶", "安 全 账 户", "安\u200b全账户", "s a f e  a c c o u n t"):
        d = engine.evaluate(text, "agent")
        assert d.action == "block", text
    assert engine.evaluate("the class cam works", "agent").action == "allow"
    assert engine.evaluate("you idiot", "customer").text == "you *****"


def test_configured_actions_masks_and_keywords() -> None:
    config = PolicyConfig.from_dict(
        {
            "actions": {"email": {"customer": "mask"}, "secret": "flag", "vip": "block"},
            "mask": {"card": "last2", "email": "full"},
            "keywords": [{"term": "Project Falcon", "category": "vip"}],
            "builtin_keywords": False,
        }
    )
    e = PolicyEngine(config)
    assert e.evaluate("a@b.com", "customer").text == "*@*.***"
    assert e.evaluate("4111111111111111", "customer").text == "**************11"
    assert e.evaluate("otp 123456", "agent").action == "flag"
    assert e.evaluate("about project-falcon", "customer").action == "block"
    assert e.evaluate("安全账户", "agent").action == "allow"


@pytest.mark.parametrize(
    "settings",
    [
        {"actions": {"card": "explode"}},
        {"actions": {"card": {"robot": "mask"}}},
        {"mask": {"card": "last42"}},
        {"keywords": [{"term": "..."}]},
        {"keywords": "nope"},
    ],
)
def test_bad_settings_raise_clear_errors(settings: dict) -> None:
    with pytest.raises(PolicyConfigError, match="policy"):
        PolicyConfig.from_dict(settings)


def test_as_dict_matches_the_endpoint_contract(engine: PolicyEngine) -> None:
    body = PolicyEngine.as_dict(engine.evaluate("card 4111111111111111", "agent"))
    assert body == {
        "action": "block",
        "text": None,
        "findings": [
            {"kind": "card", "start": 5, "end": 21, "rule": "card.luhn", "action": "block"}
        ],
    }


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "....----____",
        "\u200b" * 1000,
        "a\ud800b\udfff",
        "\ud800" * 100,
        "9" * 100_000,
        "4111 " * 20_000,
        "x" * 200_000,
        "-----BEGIN PRIVATE KEY-----",
        "a@" * 5000,
        "a." * 50_000 + "com",
        "http://" + "a" * 100_000,
    ],
)
def test_bad_input_never_crashes(engine: PolicyEngine, text: str) -> None:
    for direction in ("customer", "agent"):
        d = engine.evaluate(text, direction)
        assert isinstance(d, Decision)


def test_surrogates_do_not_hide_data(engine: PolicyEngine) -> None:
    d = engine.evaluate("\ud800 card 4111111111111111 \udfff", "customer")
    assert d.text == "\ud800 card ************1111 \udfff"


def test_direction_is_checked(engine: PolicyEngine) -> None:
    with pytest.raises(ValueError):
        engine.evaluate("hi", "supervisor")  # type: ignore[arg-type]
