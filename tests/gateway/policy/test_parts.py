"""A number given in two or three parts in one message, its last or first digits named
apart (detectors/parts.py): found only when the parts together validate, every part masked
whole."""

from __future__ import annotations

import pytest

from gateway.policy import PolicyConfig, PolicyEngine
from gateway.policy.detectors.numbers import numerals_as_digits, words_as_digits
from gateway.policy.detectors.parts import whole_number


@pytest.fixture(scope="module")
def eng() -> PolicyEngine:
    return PolicyEngine(PolicyConfig.from_dict({"actions": {"phone": "mask"}}))


@pytest.mark.parametrize(
    ("text", "kind", "masked"),
    [
        ("身份证后四位002X，前面11010519491231", "cn_id", "身份证后四位****，前面**************"),
        # the first fifteen and the last four: one digit said twice
        ("身份证后4位002X 前15位110105194912310", "cn_id", "身份证后4位**** 前15位***************"),
        ("前面是11010519491231，身份证尾号002x", "cn_id", "前面是**************，身份证尾号****"),
        ("身份证号码的后六位是31002X，前面是110105194912", "cn_id", None),
        ("手机尾号5678，前七位1380013", "phone", "手机尾号****，前七位*******"),
        ("手机尾号5678，前面是138 0013", "phone", "手机尾号****，前面是*** ****"),
        ("卡号前12位411111111111，末四位1111", "card", "卡号前12位************，末四位****"),
        ("my card ends in 1111, the rest is 4111 1111 1111", "card", None),
        ("last four 1111; first twelve 4111-1111-1111", "card", None),
    ],
)
def test_a_number_in_two_parts_is_found_and_masked_whole(
    eng: PolicyEngine, text: str, kind: str, masked: str | None
) -> None:
    d = eng.evaluate(text, "customer")
    parts = [f for f in d.findings if f.rule == "parts"]
    assert [f.kind for f in parts] == [kind, kind], text
    plugin = eng.for_audience(text, d, "plugin")
    assert plugin is not None
    for f in parts:  # nothing of either part is left, not even a "last 4"
        assert not any(c.isdigit() or c in "xX" for c in plugin[f.start : f.end]), plugin
    if masked is not None:
        assert d.text == masked


@pytest.mark.parametrize(
    "text",
    [
        "订单号20240101123，尾号1234",  # the two make no number
        "银行卡尾号1234",  # a tail alone
        "身份证后四位002X",
        "尾号5678 的订单 1380013579 已发货",  # 1380013579 + 5678 is no number
        "order 4111111111111111 ends in 1111",  # a whole card: found as itself
        "手机尾号 13800138000",  # the tail phrase before a whole number
    ],
)
def test_parts_that_make_no_number_stay_apart(eng: PolicyEngine, text: str) -> None:
    assert all(f.rule != "parts" for f in eng.evaluate(text, "customer").findings), text


@pytest.mark.parametrize(
    ("text", "kind", "masked"),
    [
        (
            "身份证前六位110105，中间19491231，后四位002X",
            "cn_id",
            "身份证前六位******，中间********，后四位****",
        ),
        (
            "卡号前四位4111，中间1111 1111，后四位1111",
            "card",
            "卡号前四位****，中间**** ****，后四位****",
        ),
        (
            "my card starts with 4111, then 1111 1111, last four 1111",
            "card",
            "my card starts with ****, then **** ****, last four ****",
        ),
        ("手机前三位138，中间0013，尾号8000", "phone", "手机前三位***，中间****，尾号****"),
        ("后四位002X，前六位110105，其余19491231", "cn_id", None),  # the tail first
    ],
)
def test_a_number_in_three_parts_is_found_and_masked_whole(
    eng: PolicyEngine, text: str, kind: str, masked: str | None
) -> None:
    d = eng.evaluate(text, "customer")
    assert [f.kind for f in d.findings if f.rule == "parts"] == [kind] * 3, text
    plugin = eng.for_audience(text, d, "plugin")
    assert plugin is not None and not any(c.isdigit() for c in plugin), plugin
    if masked is not None:
        assert d.text == masked


@pytest.mark.parametrize(
    "text",
    [
        "订单12345678，金额99元，尾号1234",  # two parts and a tail that make no number
        "5月20日买的，尾号1234",
        "前六位110105，中间19491231，后四位0021",  # a wrong check character
        "卡号前四位4111，中间1111 1111，后四位1112",  # Luhn
    ],
)
def test_three_parts_that_make_no_number_stay_apart(eng: PolicyEngine, text: str) -> None:
    assert all(f.rule != "parts" for f in eng.evaluate(text, "customer").findings), text


@pytest.mark.parametrize(
    ("text", "kind", "masked"),
    [
        ("我手机是138开头，后面是00138000", "phone", "我手机是***开头，后面是********"),
        ("手机号138 开头的，其余 0013 8000", "phone", "手机号*** 开头的，其余 **** ****"),
        ("前三位138，后八位00138000", "phone", "前三位***，后八位********"),
        ("开头是138，后面00138000", "phone", "开头是***，后面********"),
        ("后面是00138000，前3位是138", "phone", "后面是********，前3位是***"),  # the rest first
        (
            "身份证前六位110105，后面是19491231002X",
            "cn_id",
            "身份证前六位******，后面是************",
        ),
        (
            "my card starts with 4111, the rest is 1111 1111 1111",
            "card",
            "my card starts with ****, the rest is **** **** ****",
        ),
        ("first three 138, then 00138000", "phone", "first three ***, then ********"),
        ("4111打头，余下111111111111", "card", "****打头，余下************"),
    ],
)
def test_a_number_after_its_named_head_is_found_and_masked_whole(
    eng: PolicyEngine, text: str, kind: str, masked: str
) -> None:
    d = eng.evaluate(text, "customer")
    assert [f.kind for f in d.findings if f.rule == "parts"] == [kind, kind], text
    assert d.text == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("开头是138，中间0013，最后8000", "开头是***，中间****，最后****"),
        (
            "身份证前六位110105，中间19491231，其余002X",
            "身份证前六位******，中间********，其余****",
        ),
    ],
)
def test_a_head_and_two_parts_after_it_are_found_and_masked_whole(
    eng: PolicyEngine, text: str, masked: str
) -> None:
    d = eng.evaluate(text, "customer")
    assert len([f for f in d.findings if f.rule == "parts"]) == 3, text
    assert d.text == masked


@pytest.mark.parametrize(
    "text",
    [
        "138开头的订单，金额99元",  # nothing makes a number
        "前三位138，订单号 12",
        "12138开头，后面00138000",  # the digits before the phrase are not the head alone
        "前三位123，后八位00138000",  # no mobile starts 123
        "starts with 4111, the rest 1111 1111 1112",  # Luhn
        "前六位110105，后面是19491231002Y",  # no check character y
        "天津开头的，后面00138000",  # no digits before the phrase
        "一二三开头的订单，参加活动",  # numerals read as digits make no number either
        # the 四 of 后四位 is no part: 031389 + 4 + 8885 would make a landline
        "订单号：前四位2024，中间031389，后四位8885",
    ],
)
def test_heads_that_make_no_number_stay_apart(eng: PolicyEngine, text: str) -> None:
    assert all(f.rule != "parts" for f in eng.evaluate(text, "customer").findings), text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("尾号八零零零，前七位一三八零零一三", "尾号****，前七位*******"),
        ("一三八开头，后面是零零一三八零零零", "***开头，后面是********"),
        ("前三位壹叁捌，后八位零零壹叁捌零零零", "前三位***，后八位********"),
        ("身份证后四位零零二X，前面11010519491231", "身份证后四位****，前面**************"),
        ("前三位138，中间零零一三，尾号八零零零", "前三位***，中间****，尾号****"),
        # digit words, English or pinyin, read aloud too; the word of a phrase stays a word
        (
            "my number starts with one three eight, then 0013 8000",
            "my number starts with *** ***** *****, then **** ****",
        ),
        (
            "starts with one-three-eight, then oh oh one three, then eight oh oh oh",
            "starts with ***-*****-*****, then ** ** *** *****, then ***** ** ** **",
        ),
        (
            "ends in eight oh oh oh, the rest is one three eight double oh one three",
            "ends in ***** ** ** **, the rest is *** ***** ***** ****** ** *** *****",
        ),
        (
            "last four one one one one, first twelve 4111 1111 1111",
            "last four *** *** *** ***, first twelve **** **** ****",
        ),
        (
            "手机尾号 ba ling ling ling，前七位 yao san ba ling ling yao san",
            "手机尾号 ** **** **** ****，前七位 *** *** ** **** **** *** ***",
        ),
        ("尾号 eight zero zero zero，前七位1380013", "尾号 ***** **** **** ****，前七位*******"),
    ],
)
def test_parts_in_numerals_or_digit_words_are_read_as_their_digits(
    eng: PolicyEngine, text: str, masked: str
) -> None:
    d = eng.evaluate(text, "customer")
    assert {f.rule for f in d.findings} == {"parts"}, text
    assert d.text == masked


@pytest.mark.parametrize(
    "text",
    [
        "I have one or two questions; my order ends in 1234",
        "starts with one, then two more, ends in 1234",  # the words make no number
        "last four 1111; one, two, three, go",
        "ends in 8000, then one two eight oh oh one four",  # no mobile starts 12
        "first three one two three, the rest 00138000",  # no mobile starts 123
    ],
)
def test_digit_words_that_make_no_number_stay_apart(eng: PolicyEngine, text: str) -> None:
    assert all(f.rule != "parts" for f in eng.evaluate(text, "customer").findings), text


def test_digit_words_are_written_as_digits_where_they_stand() -> None:
    view = "starts with one three eight, last four double oh"
    kept = [(0, 11), (29, 38)]  # "starts with", "last four"
    spelt = words_as_digits(view, kept)
    assert spelt is not None
    assert spelt.text == "starts with 138, last four 00"
    at = spelt.text.index("138")
    assert spelt.to_view(at, at + 3) == (12, 27)  # "one three eight"
    assert spelt.to_view(at + 1, at + 2) == (16, 21)  # "three"
    assert spelt.to_view(0, 11) == (0, 11)  # copied text maps one for one
    assert spelt.to_view(len(spelt.text) - 2, len(spelt.text)) == (39, 48)  # "double oh"
    assert words_as_digits("last four 1111", [(0, 9)]) is None  # only the phrase's word
    assert words_as_digits("phone it", []) is None  # "one" inside a word is no digit


def test_a_number_found_by_its_tail_is_not_reported_again_by_its_head(eng: PolicyEngine) -> None:
    d = eng.evaluate("手机前三位138，中间0013，尾号8000", "customer")
    spans = [(f.start, f.end) for f in d.findings if f.rule == "parts"]
    assert len(spans) == len(set(spans)) == 3


def test_numerals_are_read_as_digits_in_runs_only() -> None:
    assert numerals_as_digits("尾号八零零零，前七位一三八零零一三") == "尾号8000，前七位1380013"
    assert numerals_as_digits("后四位8885，一样") == "后四位8885，一样"  # a numeral alone
    assert numerals_as_digits("1三8 壹叁") == "138 13"
    assert numerals_as_digits("ascii 123") == "ascii 123"


def test_whole_number_checks_what_the_parts_make() -> None:
    assert whole_number("11010519491231", "002x") == "cn_id"
    assert whole_number("110105194912310", "002x") == "cn_id"  # one digit said twice
    assert whole_number("11010519491231", "002y") is None
    assert whole_number("11010519491232", "002x") is None  # wrong check character
    assert whole_number("1380013", "5678") == "phone"
    assert whole_number("1280013", "5678") is None  # no mobile starts 12
    assert whole_number("411111111111", "1111") == "card"
    assert whole_number("411111111111", "1112") is None  # Luhn
