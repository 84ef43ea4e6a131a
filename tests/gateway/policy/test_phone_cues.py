"""Phones of other regions after a phone cue (``phone.CUE_RULE``): found, masked for plugins,
and an order number after a cue or a number without one stays as typed."""

from __future__ import annotations

import pytest

from gateway.policy import PolicyConfig, PolicyEngine
from gateway.policy.detectors.phone import valid_after_cue
from gateway.policy.split import SplitWindow
from tests.gateway.policy.test_split import Clock


@pytest.fixture(scope="module")
def eng() -> PolicyEngine:
    return PolicyEngine(PolicyConfig())


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("call me at 415-555-2671", "415-555-2671"),
        ("my cell is 415.555.2671", "415.555.2671"),
        ("my number is (415) 555-2671", "(415) 555-2671"),
        ("my number in HK is 9123 4567", "9123 4567"),
        ("香港电话 9123 4567", "9123 4567"),
        ("我的手机是台湾的 0912 345 678", "0912 345 678"),
        ("my mobile is 07911 123456", "07911 123456"),
        ("新加坡手机号：8123 4567", "8123 4567"),
    ],
)
def test_a_number_of_another_region_after_a_phone_cue_is_a_phone(
    eng: PolicyEngine, text: str, number: str
) -> None:
    d = eng.evaluate(text, "customer")
    [finding] = d.findings
    assert (finding.kind, finding.rule) == ("phone", "phone.cue")
    assert text[finding.start : finding.end] == number
    plugin = eng.for_audience(text, d, "plugin")
    assert plugin is not None and number not in plugin
    assert 2 <= sum(c.isdigit() for c in plugin) <= 7  # 138****5678: at most 3 + 4 shown


@pytest.mark.parametrize(
    "text",
    [
        "phone: 12345678 is my order",  # valid in none of the regions
        "电话打不通，订单号 91234567",  # a word other than an announcing one after the cue
        "call me at 5pm",
        "my order is 415-555-2671",  # no cue: a bare 10-digit run is no US number by default
        "telephone 2024-05-01",
    ],
)
def test_no_phone_without_a_cue_and_a_valid_number(eng: PolicyEngine, text: str) -> None:
    assert not [f for f in eng.evaluate(text, "customer").findings if f.kind == "phone"]


def test_the_cue_rule_leaves_the_tenants_own_numbers_to_the_phone_detector(
    eng: PolicyEngine,
) -> None:
    [finding] = eng.evaluate("电话 13800138000", "customer").findings
    assert finding.rule == "phone.libphonenumber"


def test_valid_after_cue_bounds_the_digits() -> None:
    assert valid_after_cue("(415) 555-2671")
    assert not valid_after_cue("415 555")  # six digits
    assert not valid_after_cue("4155552671" * 2)  # twenty


def test_an_answer_to_an_agents_question_for_a_phone_number_is_read_with_it(
    eng: PolicyEngine,
) -> None:
    window = SplitWindow(clock=Clock())
    question = "What's your phone number?"
    window.check(eng, "c", "agent", question, eng.evaluate(question, "agent"))
    answer = "sure, 415 555 2671"
    d = window.check(eng, "c", "customer", answer, eng.evaluate(answer, "customer"))
    assert [(f.kind, answer[f.start : f.end]) for f in d.findings] == [("phone", "415 555 2671")]
