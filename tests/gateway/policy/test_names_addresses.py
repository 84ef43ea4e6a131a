"""Names and addresses: the labelled corpus (tests/policy/pii_corpus.jsonl) and the targets."""

from __future__ import annotations

import pytest

from gateway.policy import PolicyConfig, PolicyEngine
from tests.policy.pii_score import score


@pytest.fixture(scope="module")
def eng() -> PolicyEngine:
    return PolicyEngine(PolicyConfig())


def test_corpus_precision_and_recall_meet_targets(eng: PolicyEngine) -> None:
    scores, size, _ = score(eng)
    assert size >= 500
    for kind in ("name", "address"):
        assert scores[kind].precision >= 0.90, kind
        assert scores[kind].recall >= 0.90, kind


def test_defaults_show_names_to_agents_and_mask_them_for_plugins(eng: PolicyEngine) -> None:
    text = "收件人：欧阳娜娜，地址：上海市徐汇区漕溪北路88号"
    d = eng.evaluate(text, "customer")
    assert d.text == text and {f.kind for f in d.findings} == {"name", "address"}
    assert eng.for_audience(text, d, "plugin") == "收件人：欧***，地址：上海市徐汇区*******"


def test_tenant_actions_for_names_and_addresses() -> None:
    eng = PolicyEngine(
        PolicyConfig.from_dict({"actions": {"name": "mask", "address": {"agent": "block"}}})
    )
    assert eng.evaluate("我叫张三，谢谢", "customer").text == "我叫张*，谢谢"
    assert eng.evaluate("寄到北京市朝阳区建国路88号", "agent").action == "block"
    assert eng.evaluate("My name is John Smith.", "customer").text == "My name is J*** S****."


@pytest.mark.parametrize(
    "text",
    [
        "朝阳区的门店几点开门？",
        "王者荣耀的充值没到账",
        "我叫你们经理来",
        "I am happy with the service",
        "Main street store is closed",
        "张先生您好",
        "3号楼的快递柜坏了",
    ],
)
def test_look_alikes_are_not_names_or_addresses(eng: PolicyEngine, text: str) -> None:
    assert not [f for f in eng.evaluate(text, "customer").findings if f.kind in ("name", "address")]
