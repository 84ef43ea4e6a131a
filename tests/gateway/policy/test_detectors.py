from __future__ import annotations

import pytest

from gateway.policy import PolicyConfig, PolicyEngine


def kinds(engine: PolicyEngine, text: str, direction: str = "customer") -> list[str]:
    return [f.kind for f in engine.evaluate(text, direction).findings]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "card 4111111111111111",
        "card 4111 1111 1111 1111 ref 123",  # (a security code is a finding of its own)
        "card 4111-1111-1111-1111",
        "card ４１１１ １１１１ １１１１ １１１１",
        "card 4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",
        "card 4111\u200b1111\u200b1111\u200b1111",
        "amex 3782 822463 10005",
        "银联卡号6222021234567890128",
    ],
)
def test_cards_are_found_through_evasions(engine: PolicyEngine, text: str) -> None:
    assert kinds(engine, text) == ["card"]


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112",  # Luhn fails
        "order 2023112300123456",  # no issuer range
        "ref 1234567890123452",  # Luhn ok, prefix 1 is no issuer
        "price 3.14159265358979",
    ],
)
def test_checksum_invalid_numbers_are_not_cards(engine: PolicyEngine, text: str) -> None:
    assert "card" not in kinds(engine, text)


def test_an_id_with_a_wrong_check_character_after_its_cue_is_still_an_id(
    engine: PolicyEngine,
) -> None:
    """A customer who mistypes one digit of their ID still sends the other seventeen."""
    assert kinds(engine, "身份证号 110105 19491231 0021") == ["cn_id"]
    assert kinds(engine, "my ID number is 110105194912310021") == ["cn_id"]
    assert kinds(engine, "订单号 110105194912310021") == []  # no cue: a look-alike
    assert kinds(engine, "身份证号 110105194913310021") == []  # no 13th month


def test_cn_id_checksum_and_birth_date(engine: PolicyEngine) -> None:
    assert kinds(engine, "身份证11010519491231002X") == ["cn_id"]
    assert kinds(engine, "身份證 110105 19491231 002x") == ["cn_id"]
    assert kinds(engine, "ID 110105194912310021") == []  # bad check digit
    assert kinds(engine, "身份证110105194913310029") == []  # month 13
    # after the ID's own cue a bad check digit is a typo, found by its rule (test above)
    [finding] = engine.evaluate("身份证110105194912310021", "customer").findings
    assert finding.rule == "cn_id.cued"


def test_phones(engine: PolicyEngine) -> None:
    assert kinds(engine, "电话 138 0013 8000") == ["phone"]
    assert kinds(engine, "call +44 20 7946 0958") == ["phone"]
    assert kinds(engine, "call 0086 138-0013-8000") == ["phone"]
    assert kinds(engine, "order 12345678901") == []


def test_email_and_dodges(engine: PolicyEngine) -> None:
    assert kinds(engine, "mail jo.smith+x@mail.example.co.uk.") == ["email"]
    assert kinds(engine, "mail jo(at)example.com") == ["email"]
    assert kinds(engine, "邮箱：ｊｏ＠ｅｘａｍｐｌｅ．ｃｏｍ") == ["email"]


@pytest.mark.parametrize(
    "text",
    [
        "email zhang.san at example dot com",
        "邮箱 z h a n g s a n @ q q . c o m",
        "j o h n . s m i t h @ m a i l . e x a m p l e . c o . u k",
        "email zhang.san AT example DOT com thanks",
        "email zhang.san at mail dot example dot co dot uk",
        "邮箱 zhangsan 艾特 163 点 com",
        "邮箱zhangsan艾特163点com",
        "郵箱 zhangsan 艾特 163 點 com",
        "邮箱 zhangsan at qq.com",  # only the at spelt: after a word for e-mail
        "邮件地址：li.si at 126.com",
        "my email is jo at example.co.uk thanks",
        "email: jo.smith at example.com",
        # set apart by spaces, or the dots spelt with an @
        "邮箱 zhangsan @ qq . com",
        "mail zhangsan @163.com",
        "zhangsan@qq dot com",
        "jo @ example . co . uk",
        # after a word for e-mail: the at as sites ask to write it, a provider alone
        "邮箱 zhangsan#qq.com（#换成@）",
        "邮箱 zhangsan＃163.com",
        "email: zhangsan(a)qq.com",
        "邮箱 zhangsan@qq",
        "my email is li.si@gmail",
        # a bracketed at in the brackets Chinese text uses
        "zhangsan【at】163.com",
    ],
)
def test_email_spelt_out(engine: PolicyEngine, text: str) -> None:
    assert kinds(engine, text) == ["email"]


@pytest.mark.parametrize(
    "text",
    [
        "look at example.com",  # a web site, not an address
        "email me at example.com",  # a request
        "look at the shop dot now",
        "meet at gate dot one please",  # no known ending
        "I was at home, dot com bubble",
        "几点到？我在门口 at 3 点",
        "see you @ 5pm. thanks",
        "thanks @ support. Could you help",
        "ping @ team . everyone",  # no known ending
        "Thanks. see you at noon dot",  # a sentence's dot joins nothing
        "#qq.com 话题",  # no word for e-mail: a hash is a hash
        "邮箱是不是#1的问题",
        "mail me at qq",
    ],
)
def test_prose_is_no_spelt_out_email(engine: PolicyEngine, text: str) -> None:
    assert "email" not in kinds(engine, text)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("email zhang.san at example dot com", "email z****.*** at example dot com"),
        ("邮箱 zhangsan 艾特 163 点 com", "邮箱 z******* 艾特 163 点 com"),
        ("邮箱 zhangsan @ qq . com", "邮箱 z******* @ qq . com"),
        # the local part's dots spelt too: all of it is hidden, not only what follows them
        (
            "email me at john dot smith at gmail dot com",
            "email me at j*** *** ***** at gmail dot com",
        ),
        ("my email is john dot smith at gmail.com", "my email is j*** *** ***** at gmail.com"),
        ("邮箱 zhang 点 san 艾特 163 点 com", "邮箱 z**** * *** 艾特 163 点 com"),
    ],
)
def test_a_spelt_out_email_keeps_its_domain_when_masked(text: str, masked: str) -> None:
    engine = PolicyEngine(PolicyConfig.from_dict({"actions": {"email": "mask"}}))
    assert engine.evaluate(text, "customer").text == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (
            "card 4111 1111 1111 1111 exp 12/26 cvv 123",
            "card **** **** **** 1111 exp **/** cvv ***",
        ),
        (
            "卡号 4111 1111 1111 1111 有效期 12/26 安全码 123",
            "卡号 **** **** **** 1111 有效期 **/** 安全码 ***",
        ),
        ("CVV2: 4321", "CVV2: ****"),
        ("the cvc is 987, thanks", "the cvc is ***, thanks"),
        ("卡背面的三位数是 456", "卡背面的三位数是 ***"),
        # an expiry date in a message about a card, with or without the number
        ("my visa expires 09/2027", "my visa expires **/****"),
        ("信用卡到期 1/28", "信用卡到期 */**"),
    ],
)
def test_card_security_codes_and_expiry_dates_are_card_data_masked_whole(
    engine: PolicyEngine, text: str, masked: str
) -> None:
    d = engine.evaluate(text, "customer")
    assert "card" in d.kinds and d.text == masked
    assert engine.evaluate(text, "agent").action == "block"  # as card numbers are


@pytest.mark.parametrize(
    "text", ["优惠券有效期 12/26", "会员有效期到12/31", "有效期至 2025-12", "I expect 12/26"]
)
def test_an_expiry_date_outside_a_message_about_a_card_is_left_alone(
    engine: PolicyEngine, text: str
) -> None:
    assert engine.evaluate(text, "customer").findings == ()


def test_three_digits_without_a_security_code_cue_are_no_card(engine: PolicyEngine) -> None:
    assert kinds(engine, "I have 3 cvv questions about order 123") == []
    assert kinds(engine, "房间号 123，安全出口在左边") == []


def test_iban_mod97(engine: PolicyEngine) -> None:
    assert kinds(engine, "IBAN DE89 3704 0044 0532 0130 00 ok") == ["iban"]
    assert kinds(engine, "IBAN GB82WEST12345698765432") == ["iban"]
    assert kinds(engine, "IBAN DE88 3704 0044 0532 0130 00") == []


def test_secrets(engine: PolicyEngine) -> None:
    assert kinds(engine, "your verification code is 482913") == ["otp"]
    assert kinds(engine, "验证码：482913") == ["otp"]
    assert kinds(engine, "my password is hunter2!") == ["password"]
    assert kinds(engine, "密碼：abc12345") == ["password"]
    assert kinds(engine, "the password is wrong") == []
    assert kinds(engine, "token ghp_" + "a1" * 18) == ["api_key"]
    assert kinds(engine, "AKIAIOSFODNN7EXAMPLE") == ["api_key"]
    pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----"
    assert kinds(engine, pem) == ["private_key"]


def test_bank_account_by_context(engine: PolicyEngine) -> None:
    assert kinds(engine, "收款账号 6217 0000 1000 0000") == ["bank_account"]
    assert kinds(engine, "卡号 4111111111111111") == ["card"]  # the validated kind wins
    # a card's number with a typo (no valid checksum) after a card's phrase is account data
    assert kinds(engine, "我的银行卡 6217 0000 1000 0000 123，开户行 招商银行") == ["bank_account"]
    assert kinds(engine, "my card number is 4111 1111 1111 1112") == ["bank_account"]
    assert kinds(engine, "信用卡账单 20231201 出了") == []


@pytest.mark.parametrize(
    ("text", "values"),
    [
        (
            "call me at (415) 555-2671 or (415) 555-2672",
            [("phone", "(415) 555-2671"), ("phone", "(415) 555-2672")],
        ),
        (
            "my QQ is 123456789 or 987654321",
            [("im_account", "123456789"), ("im_account", "987654321")],
        ),
        (
            "账号 6222 0202 0001 2345 678 和 6228 4800 1234 5678 912",
            [
                ("bank_account", "6222 0202 0001 2345 678"),
                ("bank_account", "6228 4800 1234 5678 912"),
            ],
        ),
        (
            "护照号 E12345678、G87654321 / K11223344 还有 H99887766 或 J55667788",
            [("id_document", v) for v in ("E12345678", "G87654321", "K11223344", "H99887766")],
        ),
        # not after a comma (what follows is as often something else), nor letters alone
        ("验证码 123456，8888元的订单", [("otp", "123456")]),
        ("my password is hunter22 and forgotten", [("password", "hunter22")]),
        # the joined value passes the rule's check too
        ("call me at (415) 555-2671 or 12", [("phone", "(415) 555-2671")]),
    ],
)
def test_values_joined_after_one_cue_are_each_found(
    engine: PolicyEngine, text: str, values: list[tuple[str, str]]
) -> None:
    """ "A or B" after a cue: B is the same kind of value (three more at most)."""
    findings = engine.evaluate(text, "customer").findings
    assert [(f.kind, text[f.start : f.end]) for f in findings] == values


def test_links(engine: PolicyEngine) -> None:
    assert kinds(engine, "see https://help.example.com/x") == ["link"]
    assert kinds(engine, "see evil.com/login.") == ["link_external"]
    assert kinds(engine, "see ｈｔｔｐｓ：／／evil。com") == ["link_external"]
    assert kinds(engine, "see https://pаypal.com") == ["link_homoglyph"]
    assert kinds(engine, "see https://xn--pypal-4ve.com") == ["link_homoglyph"]
    assert kinds(engine, "see https://example.com@evil.com/") == ["link_external"]
    assert kinds(engine, "see 例子.中国 and file.txt, e.g. node.js") == []


def test_fast_luhn_matches_stdnum() -> None:
    import random

    from stdnum import luhn

    from gateway.policy.detectors.card import luhn_valid

    rng = random.Random(5)
    for _ in range(5000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 25)))
        assert luhn_valid(digits) == luhn.is_valid(digits)
