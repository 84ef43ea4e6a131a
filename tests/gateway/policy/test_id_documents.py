"""Identity documents besides the resident ID (passports, permits, social-security numbers)
and first-generation 15-digit IDs: found after their cue, masked like resident IDs, and the
same characters without a cue, or with free text between, left alone."""

from __future__ import annotations

import pytest

from gateway.policy import PolicyConfig, PolicyEngine
from gateway.policy.detectors.cn_id import is_legacy_cn_id
from gateway.policy.detectors.id_document import is_hkid


@pytest.fixture(scope="module")
def eng() -> PolicyEngine:
    return PolicyEngine(PolicyConfig())


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("我的护照号是 E12345678", "E12345678"),
        ("護照號碼：EA1234567", "EA1234567"),  # Traditional cue, new passport format
        ("港澳通行证 C12345678 明天到期", "C12345678"),
        ("台胞证号码是12345678", "12345678"),
        ("回乡证 H12345678", "H12345678"),
        ("军官证号：12345678", "12345678"),
        ("社保卡号 1234 5678 9", "1234 5678 9"),
        ("passport no. 123456789", "123456789"),
        ("my passport number is G12345678.", "G12345678"),
        ("Passport #: 533380006", "533380006"),
        ("residence permit 12345678", "12345678"),
        ("SSN 123-45-6789", "123-45-6789"),
        ("护照号码是E 1234 5678", "E 1234 5678"),  # the letter set apart
        ("passport number: E-1234-5678", "E-1234-5678"),
        ("ＰＡＳＳＰＯＲＴ ｅ１２３４５６７８", "ｅ１２３４５６７８"),  # full width
        # driving licences (a Chinese one carries its holder's ID number), other IDs
        ("驾驶证号 110105194912310021", "110105194912310021"),
        ("driver's license D1234567", "D1234567"),
        ("social security 123 45 6789", "123 45 6789"),
        ("national insurance number QQ 12 34 56 C", "QQ 12 34 56"),
        ("my hkid is A1234563", "A1234563"),
        ("my NRIC is S1234567D", "S1234567D"),
        ("mykad 900101-14-5678", "900101-14-5678"),
        # a US social-security number written as one needs no cue
        ("call 123-45-6789 now", "123-45-6789"),
    ],
)
def test_document_numbers_after_their_cue_are_found(
    eng: PolicyEngine, text: str, value: str
) -> None:
    d = eng.evaluate(text, "customer")
    found = [(f.kind, text[f.start : f.end]) for f in d.findings]
    assert found == [("id_document", value)]
    assert d.action == "mask" and value not in (d.text or "")
    assert (d.text or "").endswith(text[text.index(value) + len(value) :])


@pytest.mark.parametrize(
    "text",
    [
        "护照还没办好，订单 12345678",  # free text between cue and number
        "护照办理需要 15 个工作日",
        "passport expires 2030",
        "passport photos 2 copies, order 12345678",
        "通行证 办理进度查询 4008123123",  # a service line after words
        "class note 123456789",  # "ssn" only as a word
        "订单 E12345678",  # no cue
        # three, two and four digits never issued as social-security numbers, or inside more
        "000-12-3456, 666-12-3456, 900-12-3456, 123-00-4567, 123-45-0000",
        "078-05-1120",  # the number printed on a wallet insert in 1938
        "order 123-45-6789-1, shipped 2024-11-17",
    ],
)
def test_numbers_without_a_cue_right_before_them_are_left_alone(
    eng: PolicyEngine, text: str
) -> None:
    d = eng.evaluate(text, "customer")
    assert [f.kind for f in d.findings if f.kind == "id_document"] == [], text


def test_an_agent_asking_again_with_the_number_is_blocked(eng: PolicyEngine) -> None:
    d = eng.evaluate("please confirm passport number E12345678", "agent")
    assert d.blocked and d.kinds == ("id_document",)


def test_plugins_and_exports_get_the_last_four_only(eng: PolicyEngine) -> None:
    text = "护照号 E12345678"
    d = eng.evaluate(text, "customer")
    for audience in ("plugin", "export"):
        assert eng.for_audience(text, d, audience) == "护照号 *****5678"


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("110105491231002", True),
        ("440305850228123", True),
        ("110105194912310", False),  # month 49
        ("990105491231002", False),  # no province 99
        ("110105490230002", False),  # 30 February
        ("11010549123100", False),  # 14 digits
        ("11010549123100x", False),
    ],
)
def test_legacy_id_validation(digits: str, valid: bool) -> None:
    assert is_legacy_cn_id(digits) is valid


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("身份证 110105491231002", "110105491231002"),
        ("老身份证号：110105 491231 002", "110105 491231 002"),
        ("ID card number is 440305-850228-123", "440305-850228-123"),
        ("證件號 110105491231002", "110105491231002"),
    ],
)
def test_legacy_ids_after_an_id_cue_are_found(eng: PolicyEngine, text: str, value: str) -> None:
    d = eng.evaluate(text, "customer")
    assert [(f.kind, text[f.start : f.end]) for f in d.findings] == [("cn_id", value)]
    assert value not in (d.text or "")


@pytest.mark.parametrize(
    "text",
    [
        "订单 110105491231002",  # no cue: a 15-digit order number
        "身份证 110105194912310",  # no such birth date
        "身份证复印件，快递单号 110105491231002",  # words between
    ],
)
def test_fifteen_digits_without_a_cue_or_a_date_are_no_id(eng: PolicyEngine, text: str) -> None:
    assert [f for f in eng.evaluate(text, "customer").findings if f.kind == "cn_id"] == []


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("a123456(3)", True),  # the sample number commonly cited for the check
        ("ab987654(3)", True),
        ("c668668(9)", True),
        ("a123456(4)", False),
        ("ab987654(a)", False),
    ],
)
def test_hkid_check_digit(value: str, valid: bool) -> None:
    assert is_hkid(value) is valid


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("香港身份证 A123456(3) 谢谢", "A123456(3)"),
        ("HKID AB987654（3）", "AB987654（3）"),  # full-width brackets
        ("my id is Ｃ６６８６６８(9).", "Ｃ６６８６６８(9)"),
    ],
)
def test_hong_kong_ids_with_their_check_digit_need_no_cue(
    eng: PolicyEngine, text: str, value: str
) -> None:
    d = eng.evaluate(text, "customer")
    assert [(f.kind, text[f.start : f.end]) for f in d.findings] == [("id_document", value)]
    assert value not in (d.text or "")


@pytest.mark.parametrize("text", ["订单 A123456(4)", "型号 XY123456(7)", "A123456 3"])
def test_a_wrong_hkid_check_digit_is_no_id(eng: PolicyEngine, text: str) -> None:
    assert "id_document" not in {f.kind for f in eng.evaluate(text, "customer").findings}
