"""Dates of birth after their cue (kind ``birth_date``) and mainland licence plates (kind
``vehicle_plate``): shown to agents like phone numbers, masked for plugins and exports; the
dates and codes around them that are neither left alone."""

from __future__ import annotations

import pytest

from gateway.policy import PolicyConfig, PolicyEngine
from gateway.policy.describe import effective_table


@pytest.fixture(scope="module")
def eng() -> PolicyEngine:
    return PolicyEngine(PolicyConfig())


def _found(eng: PolicyEngine, text: str, kind: str) -> list[str]:
    findings = eng.evaluate(text, "customer").findings
    return [text[f.start : f.end] for f in findings if f.kind == kind]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("出生日期：1990-01-01", "1990-01-01"),
        ("出生日期1990/1/1", "1990/1/1"),
        ("出生年月日：19900101", "19900101"),
        ("出生年月 1990.01", "1990.01"),
        ("我的生日是1990年1月1日", "1990年1月1日"),
        ("我的生日是3月5号", "3月5号"),
        ("生日：一九九〇年十二月三十一日", "一九九〇年十二月三十一日"),
        ("生日是三月五号", "三月五号"),
        ("我生于1988年6月", "1988年6月"),
        ("出生於1990年1月1日", "1990年1月1日"),  # Traditional 於
        ("DOB 05/03/1990", "05/03/1990"),
        ("D.O.B.: 12/25/90", "12/25/90"),
        ("date of birth is 1990-01-01", "1990-01-01"),
        ("born on the 5th of March, 1990", "5th of March, 1990"),
        ("my birthday is nov 5", "nov 5"),
        ("Birthday: March 5th, 1990.", "March 5th, 1990"),
        ("birth date: september 1990", "september 1990"),
        ("出生日期：１９９０－０１－０１", "１９９０－０１－０１"),  # full-width
        # the date before its cue, as Chinese puts it
        ("我是1990年3月5日出生的", "1990年3月5日"),
        ("本人1985年6月12日出生，现住北京", "1985年6月12日"),
        ("5月20日是我的生日", "5月20日"),
        ("5月20日 是 我的 生日", "5月20日"),
        ("我3月5号过生日，有生日券吗", "3月5号"),
        ("生辰八字：1990年1月1日", "1990年1月1日"),
        ("March 5 is my birthday", "March 5"),
    ],
)
def test_dates_of_birth_after_their_cue(eng: PolicyEngine, text: str, value: str) -> None:
    d = eng.evaluate(text, "customer")
    assert [(f.kind, text[f.start : f.end]) for f in d.findings] == [("birth_date", value)]
    assert d.text == text  # agents see it: they verify customers by it
    plugin = eng.for_audience(text, d, "plugin")
    assert plugin is not None and value not in plugin
    assert not any(c.isdigit() for c in plugin[plugin.index("*") :])


@pytest.mark.parametrize(
    "text",
    [
        "生日快乐！",
        "生日礼物3月5日送到",  # free text between cue and date
        "我的订单2024-12-18发货的",  # a date without a cue
        "生于1990年",  # a year alone says an age
        "出生日期：1990-13-01",  # no 13th month
        "出生日期：1990-02-32",
        "生日是18000000000",
        "stubborn 1990-01-01",  # the cue inside a word
        "Adobe 2020-01-01 licence",
        "born in 1990",
        "my birthday is next week, on 2024-03-05 I pay",  # free text between
        "出生地：北京，1990-01-01到的",
        "生日，6月1日发货",  # after a comma: as often another date
        "3月5日发货 生日快乐",  # before the cue, but other words between
        "1990-01-01 生日快乐",  # spaces alone do not tie a date to the cue after it
        "能查出生产日期是2024-01-01吗",  # 出生 across two words (查出, 生产)
    ],
)
def test_other_dates_and_words_are_no_birth_date(eng: PolicyEngine, text: str) -> None:
    assert _found(eng, text, "birth_date") == []


def test_a_date_before_the_cue_and_one_after_it_are_both_found(eng: PolicyEngine) -> None:
    text = "5月20日是我的生日 6月1日发货，3月5日发货 生日：1990-01-01"
    assert _found(eng, text, "birth_date") == ["5月20日", "6月1日", "1990-01-01"]


def test_a_date_before_the_cue_must_stand_next_to_it(eng: PolicyEngine) -> None:
    """At most four tying words between date and cue; a date inside a digit run is none
    ("20241990年" is no year, so only its month and day are read)."""
    assert _found(eng, "1990年3月5日是是是是生日", "birth_date") == ["1990年3月5日"]
    assert _found(eng, "1990年3月5日是是是是是生日", "birth_date") == []
    assert _found(eng, "20241990年3月5日出生", "birth_date") == ["3月5日"]


def test_november_is_not_read_as_no(eng: PolicyEngine) -> None:
    """The announcing filler is not the ID rules' one: its possessive "no" would eat "nov"."""
    assert _found(eng, "dob nov 5 1990", "birth_date") == ["nov 5 1990"]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("我的车牌是京A12345", "A12345"),
        ("车是粤B·D12345，停在B2", "B·D12345"),  # new energy, six characters
        ("粤B 12345D", "B 12345D"),
        ("教练车沪C1234学", "C1234学"),
        ("浙A 8B8B8 明天来取", "A 8B8B8"),
        ("川AF1234", "AF1234"),
        ("车牌號：京Ａ１２３４５", "Ａ１２３４５"),  # full-width, Traditional cue
        ("新A12345", "A12345"),
    ],
)
def test_plates_by_their_form(eng: PolicyEngine, text: str, value: str) -> None:
    d = eng.evaluate(text, "agent")
    assert [(f.kind, text[f.start : f.end]) for f in d.findings] == [("vehicle_plate", value)]
    assert d.text == text
    plugin = eng.for_audience(text, d, "plugin")
    assert plugin is not None and value not in plugin
    start = text.index(value)
    assert plugin[start - 1] == text[start - 1]  # the province's character stays


@pytest.mark.parametrize(
    "text",
    [
        "全新X10000型号",  # a model after 全新, not Xinjiang
        "北京a1234",  # four characters: too short
        "京ABCDE1",  # too few digits
        "京A123456789",  # too long
        "京AI2345",  # I is never a plate letter
        "订单号 A12345",
        "iphone京A12345",  # after a Latin letter
        "京东A12345号商品",  # 东 between
    ],
)
def test_other_codes_are_no_plate(eng: PolicyEngine, text: str) -> None:
    assert _found(eng, text, "vehicle_plate") == []


def test_the_admin_table_shows_both_kinds_with_their_audience_masks() -> None:
    rows = {row["kind"]: row for row in effective_table(PolicyConfig())}
    for kind in ("birth_date", "vehicle_plate"):
        assert rows[kind]["customer"] == rows[kind]["agent"] == "allow"
        assert rows[kind]["plugin"] == rows[kind]["export"] == "mask"
        assert rows[kind]["log"] == "never"


def test_a_tenant_can_block_them(eng: PolicyEngine) -> None:
    strict = PolicyEngine(
        PolicyConfig.from_dict({"actions": {"birth_date": "mask", "vehicle_plate": "block"}})
    )
    assert strict.evaluate("生日是1990-01-01", "customer").text == "生日是****-**-**"
    assert strict.evaluate("京A12345", "customer").action == "block"
