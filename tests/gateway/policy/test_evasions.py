"""Every evasion class of issue 12 at the engine level: the number is found, masked on the
ORIGINAL characters, and look-alike decoys stay untouched."""

from __future__ import annotations

import itertools
import string
import time

import pytest

from gateway.policy import PolicyConfig, PolicyEngine
from gateway.policy.detectors.iban import _country_format

CARD = "4111111111111111"
ID = "11010519491231002X"
MOBILE = "13800138000"
IBAN = "DE89370400440532013000"


@pytest.fixture(scope="module")
def eng() -> PolicyEngine:
    return PolicyEngine(PolicyConfig.from_dict({"actions": {"phone": "mask"}}))


def _spaced(number: str, sep: str, size: int = 4) -> str:
    return sep.join(number[i : i + size] for i in range(0, len(number), size))


SEPARATORS = [
    "\n",
    "\n" * 13,  # whitespace of any length
    " " * 40,
    "\n \n \n \n \n \n \n ",
    "\t",
    "/",
    ",",
    "_",
    "    ",
    "      ",
    "\u2212",
    "\u2013",
    "\u2014",
    "\u2015",
    "\u2012",
    "\ufe63",
    "\uff0d",
    " / ",
    ",\n",
    "\u3000",
    "\u00a0",
]


@pytest.mark.parametrize("sep", SEPARATORS)
def test_separators_inside_numbers(eng: PolicyEngine, sep: str) -> None:
    for number, kind in ((CARD, "card"), (ID, "cn_id"), (MOBILE, "phone"), (IBAN, "iban")):
        text = "号码 " + _spaced(number, sep) + " 谢谢"
        d = eng.evaluate(text, "customer")
        found = [f for f in d.findings if f.kind == kind]
        assert found, (repr(sep), kind)
        f = found[0]
        assert text[f.start : f.end].replace(sep, "") == number
        assert number[:4] not in d.text.replace(sep, "")


CJK = dict(zip("0123456789", "零一二三四五六七八九", strict=True))
CAPS = dict(zip("0123456789", "零壹贰叁肆伍陆柒捌玖", strict=True))
WORDS = dict(
    zip("0123456789", "zero one two three four five six seven eight nine".split(), strict=True)
)
PINYIN = dict(zip("0123456789", "ling yao er san si wu liu qi ba jiu".split(), strict=True))


@pytest.mark.parametrize(
    ("table", "sep"), [(CJK, ""), (CAPS, ""), (CJK, " "), (WORDS, " "), (PINYIN, " "), (WORDS, "-")]
)
def test_spelt_digits(eng: PolicyEngine, table: dict[str, str], sep: str) -> None:
    for number, kind in ((CARD, "card"), (ID, "cn_id"), (MOBILE, "phone")):
        spelt = sep.join(table.get(c, c) for c in number)
        text = f"my number: {spelt} ok"
        d = eng.evaluate(text, "customer")
        assert any(f.kind == kind for f in d.findings), (spelt, kind)
        # A spelt number is masked completely: its "last 4" would give it away.
        tail = sep.join(table.get(c, c) for c in number[-4:])
        assert tail not in d.text
        assert d.text.startswith("my number: ") and d.text.endswith(" ok")


def _read_aloud(number: str) -> str:
    """``number`` as people read it out: runs of a digit as "double"/"triple", zero as
    "oh" ("one three eight double oh one three eight triple oh")."""
    words = {**WORDS, "0": "oh"}
    out = []
    for digit, group in itertools.groupby(number):
        count = len(list(group))
        while count:
            take = min(count, 3)
            out.append({1: "", 2: "double ", 3: "triple "}[take] + words[digit])
            count -= take
    return " ".join(out)


@pytest.mark.parametrize("sep", [" ", ", "])
def test_numbers_read_aloud(eng: PolicyEngine, sep: str) -> None:
    for number, kind in ((CARD, "card"), (MOBILE, "phone"), ("4000056655665556", "card")):
        spoken = _read_aloud(number).replace(" ", sep).replace("double" + sep, "double ")
        spoken = spoken.replace("triple" + sep, "triple ")
        text = f"my number: {spoken}. oh and thanks"
        d = eng.evaluate(text, "customer")
        [found] = [f for f in d.findings if f.kind == kind]
        assert text[found.start : found.end] == spoken, (spoken, kind)
        assert (
            d.text
            == "my number: " + "".join(c if c in " ," else "*" for c in spoken) + ". oh and thanks"
        )


@pytest.mark.parametrize(
    "text",
    [
        "oh, 13800138000 is my number",  # "oh" next to digits, not digit words
        "Oh I see, double check card 4111 1111 1111 1111 please",
        "oh oh oh oh oh oh oh oh oh",
    ],
)
def test_oh_and_double_are_words_away_from_digit_words(eng: PolicyEngine, text: str) -> None:
    d = eng.evaluate(text, "customer")
    for f in d.findings:
        assert not text[f.start : f.end].lower().startswith(("oh", "double")), text
    assert d.text is not None  # the words stay as written
    assert [d.text.lower().count(w) for w in ("oh", "double")] == [
        text.lower().count(w) for w in ("oh", "double")
    ]


@pytest.mark.parametrize(
    ("text", "phones"),
    [
        ("手机 138 0013 8000 139 0013 9000", ["138 0013 8000", "139 0013 9000"]),
        ("手机 138 0013 8000 12", ["138 0013 8000"]),  # a stray group after it
        ("订单 12 138 0013 8000", ["138 0013 8000"]),  # an order number before it
        ("电话 一三八 零零一三 八零零零 5", ["一三八 零零一三 八零零零"]),
    ],
)
def test_mobiles_grouped_3_4_4_inside_longer_runs(
    eng: PolicyEngine, text: str, phones: list[str]
) -> None:
    d = eng.evaluate(text, "customer")
    assert [text[f.start : f.end] for f in d.findings if f.kind == "phone"] == phones


@pytest.mark.parametrize(
    "text",
    [
        "账户 6217 0013 8000 1234",  # grouped in fours: an account, no mobile inside
        "单号 2024 138 0013 800",  # 3-4-3
    ],
)
def test_only_3_4_4_groups_are_mobiles_inside_longer_runs(eng: PolicyEngine, text: str) -> None:
    assert "phone" not in {f.kind for f in eng.evaluate(text, "customer").findings}


@pytest.mark.parametrize(
    "spelt",
    ["❹❶❶❶ ❶❶❶❶ ❶❶❶❶ ❶❶❶❶", "➍➊➊➊ ➊➊➊➊ ➊➊➊➊ ➊➊➊➊", "➃➀➀➀ ➀➀➀➀ ➀➀➀➀ ➀➀➀➀", "⓸⓵⓵⓵ ⓵⓵⓵⓵ ⓵⓵⓵⓵ ⓵⓵⓵⓵"],
)
def test_dingbat_digits(eng: PolicyEngine, spelt: str) -> None:
    # circled digits without a compatibility mapping (unlike ①) were no digits at all
    d = eng.evaluate(f"card {spelt}", "customer")
    assert d.kinds == ("card",) and d.findings[0].start == 5


def test_traditional_and_variant_numerals(eng: PolicyEngine) -> None:
    spelt = "".join({"1": "壹", "3": "參", "8": "捌", "0": "〇"}[c] for c in MOBILE)
    d = eng.evaluate("電話" + spelt, "customer")
    assert [f.kind for f in d.findings] == ["phone"]
    assert eng.evaluate("一三八兩兩一三八兩兩兩", "customer").kinds == ("phone",)  # 两 = 2
    assert eng.evaluate("幺三八零零幺三八零零零", "customer").kinds == ("phone",)


@pytest.mark.parametrize(
    "spelt",
    [
        "4111 l111 1111 1111",
        "4lll 1111 1111 1111",
        "4111 1111 1111 111l",
        "4111-IIII-1111-1111",
        "411|-1111-1111-1111",
    ],
)
def test_homoglyph_digits_inside_runs(eng: PolicyEngine, spelt: str) -> None:
    d = eng.evaluate(f"card {spelt} thanks", "customer")
    assert d.kinds == ("card",)
    assert d.text == "card " + "".join("*" if c.isalnum() else c for c in spelt) + " thanks"


@pytest.mark.parametrize(
    ("spelt", "kind"),
    [
        ("l三八〇〇一三八〇〇〇", "phone"),
        ("I一〇一〇五一九四九一二三一〇〇二X", "cn_id"),
        ("o 四一一一一一一一一一一一一一一一 l", "card"),
    ],
)
def test_homoglyph_glued_in_front_of_chinese_numerals(
    eng: PolicyEngine, spelt: str, kind: str
) -> None:
    # The glued homoglyph was also read as one standing alone, which hid the numerals after
    # it: "l三八〇〇一三八〇〇〇" (13800138000) reached the agent unmasked.
    d = eng.evaluate(f"号码 {spelt} 谢谢", "customer")
    assert d.kinds == (kind,)
    assert spelt.strip("ol ")[1:] not in (d.text or "")


@pytest.mark.parametrize(
    "spelt",
    [
        "DE89 3704 0044 0532 0130 OO",
        "DE89 37O4 OO44 O532 Ol3O OO",
        "GB82 WEST l234 5698 7654 32",  # the letters of the bank code stay letters
    ],
)
def test_homoglyph_digits_inside_ibans(eng: PolicyEngine, spelt: str) -> None:
    d = eng.evaluate(f"IBAN {spelt} thanks", "customer")
    assert d.kinds == ("iban",)
    assert d.findings[0].start == 5 and d.findings[0].end == 5 + len(spelt)


@pytest.mark.parametrize(
    "spelt",
    [
        "G B 8 2 W E S T 1 2 3 4 5 6 9 8 7 6 5 4 3 2",
        "G-B-8-2 WEST 1234 5698 7654 32",
        "de 89 3704 0044 0532 0130 00",
    ],
)
def test_an_iban_with_its_country_code_and_check_digits_set_apart(
    eng: PolicyEngine, spelt: str
) -> None:
    d = eng.evaluate(f"IBAN {spelt} thanks", "customer")
    assert d.kinds == ("iban",)
    assert d.findings[0].start == 5 and d.findings[0].end == 5 + len(spelt)
    # wrong check digits stay no IBAN however they are spaced
    assert eng.evaluate("IBAN G B 8 8 WEST 1234 5698 7654 32", "customer").kinds == ()


def test_a_fully_spaced_iban_needs_the_word() -> None:
    # without "iban" the strict start needs a letter and a digit side by side (the gate of a
    # pattern that would stop at every letter of English text)
    eng = PolicyEngine()
    assert eng.evaluate("G B 8 2 W E S T 1 2 3 4 5 6 9 8 7 6 5 4 3 2", "customer").kinds == ()


def test_homoglyphs_do_not_make_an_invalid_iban_valid(eng: PolicyEngine) -> None:
    assert eng.evaluate("IBAN DE89 3704 0044 0532 0130 OO", "customer").kinds == ("iban",)
    assert eng.evaluate("IBAN DE88 3704 0044 0532 0130 OO", "customer").kinds == ()


def test_every_country_format_describes_each_position() -> None:
    # the homoglyph reading walks the candidate and its country's position kinds together
    formats = [
        f
        for a, b in itertools.product(string.ascii_lowercase, repeat=2)
        if (f := _country_format(a + b)) is not None
    ]
    assert len(formats) > 80  # schwifty's registry: every IBAN country
    for f in formats:
        assert len(f.kinds) == f.length and set(f.kinds) <= set("anc"), f


@pytest.mark.parametrize(
    ("text", "kind", "masked"),
    [
        # a numeral right after a number is a word there (一直 "always", 两个 "two of"):
        # it was read as the number's last digit, and the number was no longer valid
        ("手机13800138000一直打不通", "phone", "手机*******8000一直打不通"),
        ("我的手机13800138000两个号码都行", "phone", "我的手机*******8000两个号码都行"),
        ("身份证11010519491231002X两张", "cn_id", "身份证**************002X两张"),
        ("卡号4111111111111111一张", "card", "卡号************1111一张"),
        # a number written half in digits, half in numerals is still one number
        ("手机138零零13八000", "phone", "手机***********"),
        ("卡号 4111一一一一1111一一一一", "card", "卡号 ****************"),
    ],
)
def test_numbers_next_to_chinese_numerals(
    eng: PolicyEngine, text: str, kind: str, masked: str
) -> None:
    d = eng.evaluate(text, "customer")
    assert kind in d.kinds and d.text == masked


def test_homoglyph_before_an_id_check_character(eng: PolicyEngine) -> None:
    # "lX" standing alone is the ID's last digit (1) and its check character: it was read
    # as neither, so "4403 0519 8503 1294 lX" kept the ID whole.
    d = eng.evaluate("number: 4403 0519 8503 1294 lX thanks", "customer")
    assert d.kinds == ("cn_id",)
    assert d.text == "number: **** **** **** **** ** thanks"


def test_homoglyphs_only_count_next_to_digits(eng: PolicyEngine) -> None:
    # "hello1" must not become "he1101": letters glued to letters are words.
    assert eng.evaluate("hello1 oil 41 lol 11 ill 1111 1111 1111", "customer").findings == ()


@pytest.mark.parametrize(
    "encode",
    [
        lambda s: "".join(f"&#{ord(c)};" for c in s),
        lambda s: "".join(f"&#x{ord(c):x};" for c in s),
        lambda s: "".join(f"%{ord(c):02X}" for c in s),
        lambda s: s[:4] + "".join(f"&#{ord(c)};" for c in s[4:8]) + s[8:],
        lambda s: s[:6] + "%3" + s[6] + s[7:],
    ],
)
def test_html_entities_and_percent_escapes(eng: PolicyEngine, encode) -> None:
    for number, kind in ((CARD, "card"), (MOBILE, "phone")):
        encoded = encode(number)
        text = f"x {encoded} y"
        d = eng.evaluate(text, "customer")
        found = [f for f in d.findings if f.kind == kind]
        assert found and text[found[0].start : found[0].end] == encoded
        assert (
            not any(ch.isdigit() for ch in d.text[2:-2].replace("&#x", "").replace("&#", ""))
            or "*" in d.text
        )


def test_bidi_override_with_reversed_digits(eng: PolicyEngine) -> None:
    for number, kind in ((CARD, "card"), (ID, "cn_id"), (MOBILE, "phone")):
        text = "号码\u202e" + number[::-1] + "\u202c。"
        d = eng.evaluate(text, "customer")
        assert kind in d.kinds, kind
        assert sum(c.isdigit() for c in d.text) == 0  # fully masked: display order unknown
    d = eng.evaluate("a\u202e" + CARD + "\u202cb", "customer")  # override, number forwards
    assert d.kinds == ("card",)
    assert eng.evaluate("\u202e" + CARD[::-1], "customer").kinds == ("card",)
    assert eng.evaluate(CARD[::-1], "customer").findings == ()  # no override: no reversal


@pytest.mark.parametrize("prefix_digits", [49, 64, 65, 200, 1000])
def test_no_length_cliff(eng: PolicyEngine, prefix_digits: int) -> None:
    filler = " ".join("7" for _ in range(prefix_digits))
    text = filler + " " + _spaced(CARD, " ") + " " + filler
    d = eng.evaluate(text[:4000] if len(text) <= 4000 else text, "customer")
    cards = [f for f in d.findings if f.kind == "card"]
    assert any(text[f.start : f.end].replace(" ", "") == CARD for f in cards)


def test_number_anywhere_in_a_4000_char_message(eng: PolicyEngine) -> None:
    chat = "您好，我的订单一直没有发货，请帮忙查一下。" * 200
    for pos in (0, 1000, 2500, 3970):
        text = (chat[:pos] + _spaced(CARD, "\n") + chat[pos:])[:4000]
        assert "card" in eng.evaluate(text, "customer").kinds, pos


DECOYS = [
    "4111 1111 1111 1112",  # Luhn-invalid
    "4111\n1111\n1111\n1112",
    "11010519491231002Y",
    "110105194912310021",  # wrong ID check character
    "四一一一一一一一一一一一一一一二",  # spelt, Luhn-invalid
    "四四O三O五l九七二O三l二五O三O",  # a wrong ID spelt in numerals and homoglyphs: no card in it
    # Luhn-invalid, read aloud: the 15 digits after "five" are a Luhn-valid Amex number
    "five three four double two eight five three one seven one nine three two five two",
    "订单号 2024031212345678901",
    "订单号：E20240312000123",
    "order #100234567",
    "tracking SF1234567890123",
    "运单号 YT2024031212345678",
    "快递单号 773012345678901",
    "价格 ¥1,299.00 x 3 = ¥3,897.00",
    "total $12,500.00",
    "日期 2024/05/01 12:30:45",
    "2024-05-01, 2024-06-01, 2024-07-01",
    "共 1 2 3 件",
    "房间号 1203，楼层 12",
    "一二三四五六七八九十",
    "one two three four five six seven",
    "发票号码 04403180011",
    "ISBN 978-7-111-54742-6",
    "版本 10.0.19045.3693",
    "IP 192.168.100.200",
]


@pytest.mark.parametrize("decoy", DECOYS)
def test_decoys_are_not_reported(eng: PolicyEngine, decoy: str) -> None:
    d = eng.evaluate(decoy, "customer")
    assert [f.kind for f in d.findings if f.kind in ("card", "cn_id", "phone")] == [], decoy


ADVERSARIAL = [
    "4 " * 2000,
    "1\n" * 2000,
    "one " * 1000,
    "一" * 4000,
    "一 " * 2000,
    "1l" * 2000,
    "&#52;" * 800,
    "%34" * 1333,
    "\u202e" + "4 1" * 1333,
    "4111111111111111" * 250,
    ("4" + " " * 12) * 300,
    "1x" * 2000,
    "4111 1111 1111 1111 " * 200,
    "138 0013 8000, " * 300,
]


@pytest.mark.parametrize("text", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_adversarial_4000_chars_stay_bounded(eng: PolicyEngine, text: str) -> None:
    text = text[:4000]
    best = min(_timed(eng, text) for _ in range(3))
    assert best < 0.2  # the budget is 50 ms (bench/filter.py measures it); CI machines vary


def _timed(eng: PolicyEngine, text: str) -> float:
    """CPU time of one pass (wall time on a shared CI machine measures the neighbours)."""
    t0 = time.thread_time()
    eng.evaluate(text, "customer")
    return time.thread_time() - t0
