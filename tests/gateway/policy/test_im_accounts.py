"""QQ numbers and WeChat IDs after their cue (kind ``im_account``): shown to agents like
phone numbers, masked for plugins and exports; the words around them left alone."""

from __future__ import annotations

import pytest

from gateway.policy import PolicyConfig, PolicyEngine


@pytest.fixture(scope="module")
def eng() -> PolicyEngine:
    return PolicyEngine(PolicyConfig())


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("我的QQ是123456789", "123456789"),
        ("QQ号：10001", "10001"),
        ("加我微信 zhang_san88", "zhang_san88"),
        ("微信号：wxid_abc123456，备注订单号", "wxid_abc123456"),
        ("加我vx：zhang-san-88", "zhang-san-88"),
        ("my WeChat ID is Zhangsan1990", "Zhangsan1990"),
        ("my wechat account is zhangsan88.", "zhangsan88"),
        ("qq 号 123 456 789", "123 456 789"),  # grouped digits
        ("qq 123-456-789 加我", "123-456-789"),
        # the names that slip past platforms' filters
        ("加薇 zhang_san88", "zhang_san88"),
        ("徽信：zhang_san88", "zhang_san88"),
        ("加V：zhang_san88", "zhang_san88"),
        ("扣扣 123456789", "123456789"),
        ("企鹅号 123456789", "123456789"),
    ],
)
def test_accounts_after_their_cue(eng: PolicyEngine, text: str, value: str) -> None:
    d = eng.evaluate(text, "customer")
    assert [(f.kind, text[f.start : f.end]) for f in d.findings] == [("im_account", value)]
    assert d.text == text  # agents see it, like a phone number
    plugin = eng.for_audience(text, d, "plugin")
    assert value not in plugin and value[-4:] in plugin


@pytest.mark.parametrize(
    "text",
    [
        "微信支付失败了",
        "my wechat account is zhangsan",  # letters only: could be any word
        "wechat group",
        "邮箱 zhangsan@qq.com",
        "我关注了你们的微信 公众号",
        "qq音乐会员",
        "QQ群 12345 678 人",  # a group and a head count
        "我叫张薇，谢谢",
        "加vip会员",
    ],
)
def test_words_after_the_cue_are_no_account(eng: PolicyEngine, text: str) -> None:
    assert "im_account" not in {f.kind for f in eng.evaluate(text, "customer").findings}


def test_a_phone_number_after_wechat_is_a_phone_number(eng: PolicyEngine) -> None:
    d = eng.evaluate("微信 13800138000", "customer")
    assert [f.kind for f in d.findings] == ["phone"]
