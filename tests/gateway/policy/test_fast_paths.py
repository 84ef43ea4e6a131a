"""The performance shortcuts change nothing: fast normalisation paths equal the general path,
and the engine's per-message detector gate only skips detectors that could not have matched."""

from __future__ import annotations

import json
import random
import re
import types

import phonenumbers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum import luhn
from stdnum.iso7064 import mod_97_10

from gateway.policy import PolicyConfig, PolicyEngine, links, masking, split
from gateway.policy.detectors import (
    ScanContext,
    address,
    email,
    iban,
    names,
    phone,
)
from gateway.policy.detectors.cn_id import is_cn_id
from gateway.policy.detectors.context import not_after_letter
from gateway.policy.detectors.iban import _mod97
from gateway.policy.detectors.numbers import (
    DIGIT_WORDS,
    SEVEN_DIGITS,
    find_number_runs,
    holds_digit_word,
    number_run,
)
from gateway.policy.detectors.phone import valid_cn
from gateway.policy.masking import Mask, _render_part, render
from gateway.policy.normalize import (
    _SEPARATORS,
    VIEW_WHITESPACE,
    NormalizedText,
    _view_of,
    decode_escapes,
    fold,
    tables,
)
from gateway.policy.phrases import Phrases
from gateway.policy.split import SPLIT_KINDS
from tests.gateway.policy.phone_examples import example_numbers
from tests.policy.pii_score import CORPUS as PII_CORPUS

_CONFIG = PolicyConfig.from_dict(
    {
        "actions": {"phone": "mask", "email": "mask"},
        "keywords": [{"term": "刷单", "category": "fraud"}],
    },
    allowed_link_domains=["example.com"],
)
GATED = PolicyEngine(_CONFIG)
UNGATED = PolicyEngine(_CONFIG)
UNGATED._gate_always = (1 << len(UNGATED.detectors)) - 1  # every detector runs on every text
UNGATED._gate_phrases = Phrases(())
UNGATED._gate_patterns = ()

_PIECES = [
    "4111 1111 1111 1111",
    "４１１１-1111-1111-1111",
    "11010519491231002X",
    "138 0013 8000",
    "+44 20 7946 0958",
    "li.wei@qq.com",
    "li(at)qq(dot)com",
    "DE89 3704 0044 0532 0130 00",
    "https://evil.com/x",
    "pаypal.com",
    "example.com",
    "your code is 123456",
    "验证码：4821",
    "password: hunter2!",
    "密碼是abc123",
    "api key: abcdefghijklmnop1234",
    "ghp_" + "a" * 36,
    "sk-4111111111111111abcdefghjk",  # a card number inside a secret: the secret claims it
    "password: 4111111111111111",
    "sk-" + "b" * 24,
    "-----BEGIN PRIVATE KEY-----",
    "账号 6222 0000 1234 5678",
    "刷 单",
    "order 20240312123456",
    "2024-03-12",
    "¥12.50",
    "ＩＢＡＮ",
    "GB82WEST12345698765432",
    "王先生",
    "my name is Li Wei",
    "This is Anna.",
    "Mr. Smith",
    "12 Baker Street",
    "北京市朝阳区建国路88号3栋2单元501室",
    "5号楼",
    # the pieces of this session's detections: digit words alone and inside words, cues
    "one",
    " one ",
    "phone",
    "double",
    " oh ",
    "yao san ba",
    "call me at (415) 555-2671",
    "my number is ",
    "123-45-6789",
    "exp 12/26",
    "card ",
    "qq号 ",
    "护照号码",
    "E12345678",
    "阳光小区8栋1单元502室",
    "Flat A, 12/F, Tower 2",
    "PO Box 12",
    "IBAN G B 8 2 ",
    "zhangsan#qq.com",
    "邮箱 ",
    "密码：abc123",
    "銀行卡",
    "\u200b",
    "\u3002",
    " ",
    ".",
    "-",
    "x",
    "Σ",
    "İ",
    "ß",
    "\t",
    "\x00",
    "\ud800",
    "😀",
    "e\u0301",
]
_TEXTS = st.lists(st.sampled_from(_PIECES) | st.text(max_size=6), max_size=12).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEXTS, st.sampled_from(["customer", "agent"]))
def test_gate_never_changes_a_decision(text: str, direction: str) -> None:
    assert GATED.evaluate(text, direction) == UNGATED.evaluate(text, direction)  # type: ignore[arg-type]


_SOME_KINDS = st.sampled_from(
    [SPLIT_KINDS, frozenset({"card"}), frozenset({"email"}), frozenset({"name", "address"})]
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEXTS, st.sampled_from(["customer", "agent"]), _SOME_KINDS)
def test_findings_of_some_kinds_equal_the_full_pass(
    text: str, direction: str, kinds: frozenset[str]
) -> None:
    """``findings_of`` skips keywords and the detectors that cannot decide those kinds; what
    it finds is exactly what the full pass finds of them (an earlier exclusive detector,
    a secret holding a card number, still hides what it holds)."""
    full = [f for f in GATED.evaluate(text, direction).findings if f.kind in kinds]  # type: ignore[arg-type]
    assert GATED.findings_of(text, direction, kinds) == full  # type: ignore[arg-type]


@settings(max_examples=400, deadline=None)
@given(_TEXTS)
def test_fast_normalisation_equals_general_path(text: str) -> None:
    n = NormalizedText(text)
    view, breaks = _view_of(decode_escapes(text)[0], tables())
    assert n.view == view
    assert n.compact == _SEPARATORS.sub("", view)
    assert tuple(n._breaks) == tuple(breaks)  # so every offset maps back the same way
    assert fold(text) == _view_of(text, tables())[0]  # fold takes the same fast paths


def test_printable_ascii_view_is_lower() -> None:
    t = tables()
    for cp in range(128):
        ch = chr(cp)
        if ch.isprintable():
            assert ch.translate(t.translate) == ch.lower()


def test_iban_mod97_matches_stdnum() -> None:
    rng = random.Random(5)
    for _ in range(3000):
        chars = "".join(
            rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(rng.randint(15, 34))
        )
        assert _mod97(chars) == mod_97_10.is_valid(chars[4:] + chars[:4])


def _schwifty_valid(candidate: str) -> bool:
    """Whether schwifty's ``IBAN`` takes ``candidate`` for a valid IBAN."""
    from schwifty import IBAN
    from schwifty.exceptions import SchwiftyException

    try:
        IBAN(candidate.upper())
    except SchwiftyException:
        return False
    return True


def test_ibans_are_validated_as_schwifty_validates_them() -> None:
    """``iban._valid`` reads schwifty's registry directly: for every country, its random
    IBANs, with a character changed to another letter or digit, with the check digits
    changed (the aliases 00, 01 and 99 among them), it says what ``schwifty.IBAN`` says."""
    from schwifty import IBAN

    rng = random.Random(3)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    seen = {True: 0, False: 0}
    aliases = 0
    for country in sorted(iban.registry.get_countries()):
        fmt = iban._country_format(country.lower())
        if fmt is None:
            continue
        for _ in range(30):
            try:
                value = str(IBAN.random(country_code=country)).lower()
            except Exception:  # no banks for the country in schwifty
                break
            k = rng.randrange(len(value))
            variants = [
                value,
                value[:k] + rng.choice(alphabet) + value[k + 1 :],
                value[:2] + rng.choice(["00", "01", "99", f"{rng.randrange(100):02d}"]) + value[4:],
            ]
            alias = {98: "01", 97: "00", 2: "99"}.get(int(value[2:4]))
            if alias is not None:  # passes the bare mod-97 test, never issued
                variants.append(value[:2] + alias + value[4:])
                aliases += 1
            for candidate in variants:
                want = _schwifty_valid(candidate)
                assert iban._valid(candidate, fmt) == want, candidate
                seen[want] += 1
    assert min(seen.values()) >= 1000 and aliases >= 10, (seen, aliases)


def _ibans_at_every_length(view: str) -> list[tuple[int, int]]:
    """The IBAN search before the country's length was looked up: every length from 34 down
    to 15 whose prefix passes mod 97, validated with schwifty, the longest valid one kept."""
    found = []
    pos = 0
    while (m := iban._START.search(view, pos)) is not None:
        positions = [c.start() + m.start() for c in re.finditer("[a-z0-9]", m.group())]
        chars = "".join(view[p] for p in positions)
        pos = m.start() + 1
        for n in range(min(len(chars), 34), 14, -1):
            if mod_97_10.is_valid(chars[4:n] + chars[:4]) and _schwifty_valid(chars[:n]):
                found.append((positions[0], positions[n - 1] + 1))
                pos = positions[n - 1] + 1
                break
    return found


def test_iban_cut_to_its_country_length_finds_what_every_length_found() -> None:
    """Every country's IBANs (schwifty's random ones, grouped by four or not, with any of
    the separators digit runs allow, with letters and digits glued after them, with a check
    digit changed, two in a row) are found exactly where trying every length found them,
    and nothing else is; with the gate's letter-digit pairs as the only starts tried, too."""
    from schwifty import IBAN

    rng = random.Random(12)
    countries = sorted({*iban.registry.get_countries(), "DE", "FR", "GB", "NO"})
    separators = [" ", "  ", "\n", "/", ".", "_", "\u2013", "\t", ", ", " " * 14]
    detector = iban.IbanDetector()
    hits = 0
    for country in countries:
        for _ in range(8):
            try:
                value = str(IBAN.random(country_code=country)).lower()
            except Exception:  # no spec or no banks for the country in schwifty
                break
            if rng.random() < 0.6:
                separator = rng.choice(separators)
                value = separator.join(value[k : k + 4] for k in range(0, len(value), 4))
            if rng.random() < 0.3:
                k = rng.randrange(len(value))
                if value[k].isdigit():
                    value = value[:k] + str((int(value[k]) + 1) % 10) + value[k + 1 :]
            tail = "".join(rng.choice("abc0123456789 -") for _ in range(rng.randint(0, 12)))
            if rng.random() < 0.2:
                tail += " " + str(IBAN.random(country_code="DE")).lower()
            view = f"pay to {value}{tail} thanks"
            want = _ibans_at_every_length(view)
            got = [(h.start, h.end) for h in detector.scan(ScanContext(NormalizedText(view)))]
            assert got == want, view
            # and where the engine's gate found a letter before a digit, as in a real pass
            gated = ScanContext(NormalizedText(view), GATED._gate(view)[1])
            assert [(h.start, h.end) for h in detector.scan(gated)] == want, view
            hits += len(got)
    assert hits > 200  # most were valid IBANs, found


def test_units_searched_from_the_unit_equal_the_number_first_regex() -> None:
    number_first = re.compile(address._NUM + address._GAP + address._UNIT)
    rng = random.Random(11)
    alphabet = "0123456789一二十百两号院楼栋幢座单元层室户门弄a 路\n  "
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        want = [m.span() for m in number_first.finditer(text)]
        assert list(address._numbered_units(text)) == want, text


def test_phrases_after_a_non_letter_equal_a_leading_lookbehind() -> None:
    phrases = ("code", "pin", "pin code", "i'm", "a.b", "密码", "x")
    alternation = "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True))
    leading = re.compile(rf"(?<![a-z])(?:{alternation})")
    moved = re.compile(not_after_letter(phrases))
    rng = random.Random(12)
    alphabet = "codepinm'a.bx密码 1_-"
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 16)))
        assert [m.span() for m in moved.finditer(text)] == [
            m.span() for m in leading.finditer(text)
        ], text


def test_the_numeric_gate_is_closed_only_where_no_run_can_be() -> None:
    """The numeric detectors' gate pattern (``SEVEN_DIGITS``) is a necessary condition: on
    texts of digits, numerals, homoglyphs, check characters, separators, letters and CJK
    (20,000, lengths up to 16, where a run of seven is near), a view it does not open and
    that holds no digit word has no digit run; and Chinese with a numeral inside a word
    keeps it closed."""
    gate = re.compile(SEVEN_DIGITS)
    alphabet = [
        *"0123456789一二两三〇壹oil|xX",
        " ",
        "-",
        ".",
        "/",
        "a",
        "z",
        "的",
        "下",
        "😀",
        "one",
    ]
    rng = random.Random(7)
    closed = with_runs = 0
    for _ in range(20_000):
        view = NormalizedText("".join(rng.choices(alphabet, k=rng.randint(0, 16)))).view
        runs = find_number_runs(view)
        with_runs += bool(runs)
        if gate.search(view) is None and not any(w in view for w in DIGIT_WORDS):
            closed += 1
            assert runs == (), view
    assert closed >= 2_000 and with_runs >= 2_000
    assert gate.search(NormalizedText("你好，能帮我查一下吗？两个都要").view) is None


def _named_by_regexes(text: str, decision, *, ending: bool) -> str | None:
    """What ``split._named`` answered when it ran one regex per context rule (before its
    single automaton pass), for everything a question may ask (``split.ASKED``): the
    reference it must still equal."""
    view = fold(text)
    start = 0
    if ending:
        end = len(view)
        while end and not view[end - 1].isalnum():
            end -= 1
        start = max(0, end - split.ENDING_CHARS)
    found = {f.kind for f in decision.findings}
    named = None
    for kind, triggers in split.ASKED:
        if kind in found:
            continue
        pattern = re.compile(rf"{not_after_letter(triggers)}(?![a-z])")
        for m in pattern.finditer(view, start):
            if ending and split.ENDING.fullmatch(view, m.end()) is None:
                continue
            if named is None or m.start() > named[0]:
                named = (m.start(), m.group())
    return None if named is None else named[1]


def test_the_phrase_a_message_names_is_what_one_regex_per_rule_found() -> None:
    """``split._named`` finds every rule's phrases in one automaton pass and reads each
    rule's like a regex over their alternation (longest first at a start, on after its
    end, whole words only): the same phrase as the per-rule regexes on random texts built
    from the phrases themselves, letters, fillers and punctuation, and on the corpus."""
    phrases = sorted({t for _, triggers in split.ASKED for t in triggers})
    pieces = [*phrases, "a", "x", "s", " ", "，", "：", "是", "is", "my", "的", "?", "123456"]
    rng = random.Random(29)
    texts = [json.loads(line)["text"] for line in PII_CORPUS.read_text("utf-8").splitlines()]
    for _ in range(3_000):
        texts.append("".join(rng.choice(pieces) for _ in range(rng.randint(1, 9))))
    named = 0
    for text in texts:
        decision = GATED.evaluate(text, "customer")
        for ending in (True, False):
            got = split._named(text, decision, ending=ending)
            assert got == _named_by_regexes(text, decision, ending=ending), (text, ending)
            named += got is not None
    assert named >= 2_000  # most texts name a phrase: the comparison is not of Nones


def test_every_name_pattern_match_holds_one_of_its_gate_phrases() -> None:
    """NameDetector runs a pattern only where the gate found one of its phrases: that is
    exact only if every match holds one (tried on the labelled corpus and the tests' names)."""
    texts = [json.loads(line)["text"] for line in PII_CORPUS.read_text("utf-8").splitlines()]
    texts += ["Dr. Smith said", "mr\tZhang", "收件人是我老公张伟", "我姓李，名字叫明", "张三先生"]
    gate = set(names.NameDetector.gate_phrases)
    checked = 0
    for pattern, _, phrases in (*names._ZH_PATTERNS, *names._EN_PATTERNS):
        assert phrases <= gate
        for text in texts:
            view = NormalizedText(text).view
            for m in pattern.finditer(view):
                assert any(p in m.group() for p in phrases), (pattern.pattern[:40], text)
                checked += 1
    assert checked >= 300


def test_view_whitespace_lists_every_space_a_view_can_hold() -> None:
    """Gate phrases spell ``\\s`` with VIEW_WHITESPACE: no other space may reach a view."""
    spaces: set[str] = set()
    for out in tables().translate:  # what every character below the table limit becomes
        text = chr(out) if isinstance(out, int) else out or ""
        spaces.update(ch for ch in text if ch.isspace())
    assert spaces == set(VIEW_WHITESPACE)
    # above the table's limit characters are kept as they are: none of them is a space
    assert not any(chr(cp).isspace() for cp in range(0x30000, 0x110000))


def test_chinese_numbers_are_judged_as_parsing_would() -> None:
    """``valid_cn`` skips ``phonenumbers.parse`` for the shapes the detector tries in CN."""
    rng = random.Random(13)

    def parsed(digits: str) -> bool:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(digits, "CN")))

    def digits(n: int) -> str:
        return "".join(rng.choice("0123456789") for _ in range(n))

    valid = 0
    for _ in range(6_000):
        kind = rng.randrange(3)
        if kind == 0:
            number = "1" + rng.choice("3456789") + digits(9)
        elif kind == 1:
            number = "861" + rng.choice("3456789") + digits(9)
        else:
            number = "0" + rng.choice("123456789") + digits(rng.randint(8, 10))
        assert phone._CN_SHAPE.fullmatch(number)
        assert valid_cn(number) == parsed(number), number
        valid += parsed(number)
    assert 1_000 < valid < 5_000  # both answers occur often


def test_numbers_written_with_a_plus_are_judged_as_parsing_would() -> None:
    """``valid_international`` builds the number ``phonenumbers.parse`` would for "+digits"
    (falling back to it where a national prefix may be stripped): the same answer for
    every country code, with national numbers that start with prefixes and zeros, and for
    every region's example numbers."""
    rng = random.Random(15)
    codes = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
    leads = ["", "0", "00", "06", "8", "1", "15", "9", "011"]

    def parsed(digits: str) -> bool:
        try:
            return phonenumbers.is_valid_number(phonenumbers.parse("+" + digits, None))
        except phonenumbers.NumberParseException:
            return False

    examples = example_numbers()
    numbers = examples + [digits[:-1] for digits in examples]  # and each one digit short
    for _ in range(12_000):
        national = rng.choice(leads) + "".join(
            rng.choice("0123456789") for _ in range(rng.randint(1, 12))
        )
        numbers.append((str(rng.choice(codes)) + national)[:15])
    numbers += ["0044207946095", "1", "12", "999123456", "2"]
    valid = 0
    for digits in numbers:
        assert phone.valid_international(digits) == parsed(digits), digits
        valid += parsed(digits)
    assert 500 < valid < len(numbers) - 1_000  # both answers occur often


def test_rendering_the_masked_stretch_equals_rendering_the_whole_text() -> None:
    rng = random.Random(14)
    styles = ["full", "last4", "email", "phone", "name", "address", "keep", "redact", "defang"]
    pieces = [
        "4111 1111 1111 1111",
        "li.wei@qq.com",
        "北京市朝阳区建国路88号",
        " ",
        "https://x.com/a",
        "张三",
    ]
    for _ in range(3_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 6)))
        masks = []
        for _ in range(rng.randint(1, 4)):
            start = rng.randrange(len(text))
            masks.append(Mask(start, rng.randint(start + 1, len(text)), rng.choice(styles)))
        assert render(text, masks) == _render_part(text, masks, 0), (text, masks)


def _numberish(rng: random.Random) -> str:
    """Digits that are often a valid card, ID or phone number, and often nearly one."""
    kind = rng.randrange(5)
    if kind == 0:
        body = "4" + "".join(rng.choice("0123456789") for _ in range(rng.randint(11, 17)))
        return body + luhn.calc_check_digit(body)
    if kind == 1:
        return "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9))
    if kind == 2:
        return (
            "110105"
            + str(rng.randint(1950, 2005))
            + "0101"
            + "".join(rng.choice("0123456789") for _ in range(4))
        )
    return "".join(rng.choice("0123456789") for _ in range(rng.randint(2, 26)))


def test_a_run_of_one_group_is_claimed_as_the_general_walk_claims_it() -> None:
    """``NumberRun.claim`` answers a run of one group without walking; the walk agrees."""
    rng = random.Random(15)
    checks = (luhn.is_valid, is_cn_id, lambda digits: True, lambda digits: digits[-1] in "37")
    accepted = 0
    for _ in range(4_000):
        digits = _numberish(rng)
        run = number_run(3, 3 + len(digits), rng.random() < 0.2, ((3, 3 + len(digits), digits),))
        lo = rng.randint(2, 19)
        hi = lo + rng.randint(0, 8)
        first = rng.choice(("0123456789", "123456789", "4", "1"))
        accept = rng.choice(checks)
        for claim_all in (False, True):
            shortcut = list(run.claim(lo, hi, first, accept, claim_all))
            walked = list(run._claim_groups(lo, hi, first, accept, claim_all, True))
            assert shortcut == walked, (digits, lo, hi, first)
            accepted += bool(shortcut)
    assert accepted > 400  # the shortcut's answer is often a window, not only nothing


def test_a_phone_run_of_one_group_is_judged_as_its_candidates_are() -> None:
    """The phone detector judges a run of one group directly; building, sorting and
    claiming the run's candidates (``_claimed``) gives the same numbers."""
    rng = random.Random(16)
    detector = phone.PhoneDetector(("CN", "DE"))
    found = 0
    for _ in range(3_000):
        digits = _numberish(rng)
        prefix = rng.choice(("", "", "+", "+86", "00", "0", "86"))
        ctx = ScanContext(NormalizedText(f"call {prefix}{digits} now"))
        runs = [run for run in ctx.number_runs if len(run.groups) == 1]
        fast = [(hit.start, hit.end) for hit in detector.scan(ctx)]
        general = [(w.start, w.end) for run in runs for w in detector._claimed(run)]
        assert fast == general, (prefix, digits)
        found += bool(fast)
    assert found > 300


def test_runs_the_phone_detector_skips_in_china_hold_no_chinese_number() -> None:
    """A run of several groups none of which can start a Chinese number (``phone.
    _may_hold_cn_number``) is skipped: claiming its candidates finds nothing in it."""
    rng = random.Random(17)
    detector = phone.PhoneDetector(("CN",))
    skipped = found = 0
    for _ in range(4_000):
        groups = [_numberish(rng)[: rng.randint(1, 6)] for _ in range(rng.randint(2, 5))]
        separator = rng.choice(("-", " ", "/", ".", ", "))
        ctx = ScanContext(NormalizedText(f"on {separator.join(groups)} ok"))
        for run in ctx.number_runs:
            if len(run.groups) < 2 or run.digit_count < 7:
                continue
            claimed = list(detector._claimed(run))
            found += bool(claimed)
            if not phone._may_hold_cn_number(run):
                skipped += 1
                assert claimed == [], groups
    assert skipped > 500 and found > 50  # both kinds of run were tried


def test_phone_numbers_of_every_region_validate_without_compiling_a_pattern(monkeypatch) -> None:
    """``PhoneDetector`` compiles libphonenumber's patterns once per process
    (``prepare_phonenumbers``): with ``re``'s own 512-entry cache emptied, numbers of every
    region validate without phonenumbers compiling a single pattern (the code before
    compiled each region's patterns again whenever numbers of many regions had pushed them
    out of that cache: 200-225 us a number instead of ~20)."""
    from phonenumbers import re_util

    detector = phone.PhoneDetector(("CN",))
    numbers = example_numbers()
    assert len(numbers) > 400
    compiled: list[str] = []

    def counting_compile(pattern, flags=0):
        compiled.append(pattern)
        return re.compile(pattern, flags)

    re.purge()
    # only the library's own compiling is counted (not another thread's, if any)
    monkeypatch.setattr(re_util, "re", types.SimpleNamespace(compile=counting_compile))
    accepted = [digits for digits in numbers if detector._accept_digits(digits, True)]
    monkeypatch.undo()
    assert compiled == []
    assert len(accepted) == len(numbers)


def test_ibans_validate_without_reading_a_file_once_the_detector_is_built(monkeypatch) -> None:
    """``IbanDetector`` reads schwifty's IBAN registry when it is built, not when the first
    message holding an IBAN is scanned (which waited ~4 ms for its JSON files)."""
    import schwifty.registry

    monkeypatch.setattr(schwifty.registry, "_default_registry", schwifty.registry.Registry())
    iban.prepare_schwifty.cache_clear()
    detector = iban.IbanDetector()

    def no_files(*args, **kwargs):
        raise AssertionError("the registry was read while a message was scanned")

    monkeypatch.setattr(schwifty.registry, "_registry_directory", no_files)
    text = (
        "DE89 3704 0044 0532 0130 00, GB82 WEST 1234 5698 7654 32, "
        "FR14 2004 1010 0505 0001 3M02 606"
    )
    ctx = ScanContext(NormalizedText(text))
    assert [h.kind for h in detector.scan(ctx)] == ["iban"] * 3
    monkeypatch.undo()
    iban.prepare_schwifty.cache_clear()


def test_ascii_last_n_masking_equals_counting_each_characters_weight() -> None:
    """An ASCII stretch masked ``lastN``/``full`` in one regex pass hides exactly what
    weighing each character (what every other stretch takes) hides."""
    rng = random.Random(21)
    alphabet = "0123456789abcXYZ -./*\t_+#"
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        visible = rng.randint(0, 9)
        chars = list(text)
        mask = Mask(0, len(text), "full" if visible == 0 else f"last{visible}")
        masking._star_last(chars, mask, masking._significance(chars, 0, len(text)), visible)
        assert masking._all_but_last_ascii(text, visible) == "".join(chars), (text, visible)


def test_digit_words_count_for_the_number_runs_only_standing_alone() -> None:
    # the runs skip their own search for digit words unless the gate found one alone
    assert holds_digit_word("call one", [(5, 8)])
    assert holds_digit_word("yao,san", [(0, 3), (4, 7)])
    assert not holds_digit_word("my phone", [(5, 8)])  # "one" inside "phone"
    assert not holds_digit_word("order", [(3, 5)])  # "er" (two, in pinyin) inside a word
    assert not holds_digit_word("call me", [(0, 2)])  # not a digit word at all


def test_the_secrets_detector_reads_every_gate_phrase_of_its_own() -> None:
    # it reads which of its parts to run from the gate's matches of exactly these phrases
    from gateway.policy.detectors.secrets import _GATE_BITS, SecretsDetector

    assert set(_GATE_BITS) == set(SecretsDetector.gate_phrases)
    assert all(_GATE_BITS.values())


_EMAIL_PIECES = [
    "zhang_san908@gmail.com",
    "li.wei@qq.com",
    "z h a n g s a n @ q q . c o m",
    "zhangsan @ qq . com",
    "zhangsan@qq . com",
    "zhangsan  @qq.com",
    "@",
    " @ ",
    "@@",
    "a" * 70,
    "x" * 64 + "@qq.com",
    "x" * 65 + "@qq.com",
    " ".join("abcdefghij" * 7) + " @ q q . c o m",
    "\n\n\t",
    "ok. thanks",
    "mail.example.com",
    "-",
    ".",
]


def _texts_of(pieces: list[str], alphabet: str) -> st.SearchStrategy[str]:
    """Texts of up to ten of ``pieces`` and short runs of ``alphabet``, in any order."""
    return st.lists(
        st.sampled_from(pieces) | st.text(alphabet=alphabet, max_size=4), max_size=10
    ).map("".join)


_EMAIL_TEXTS = _texts_of(_EMAIL_PIECES, "ab@. \n")


@settings(max_examples=500, deadline=None)
@given(_EMAIL_TEXTS)
def test_addresses_searched_around_each_at_equal_searching_everywhere(text: str) -> None:
    """Without a bracketed at, a spelt at or a spelt dot in the view every match of the two
    address patterns holds an @, and the search from just before each @ finds what the
    search over the whole view finds."""
    view = NormalizedText(text).view
    assert "(at" not in view and " at " not in view and "dot" not in view
    for pattern, reach in (
        (email.ADDRESS, email._LOCAL_CHARS),
        (email.SPELT_ADDRESS, email._SPELT_LOCAL_CHARS),
    ):
        want = [m.span() for m in pattern.finditer(view)]
        assert [m.span() for m in email._around_each_at(pattern, view, reach)] == want


_LINK_PIECES = [
    "https://evil.com/x",
    "http://a.b.cn",
    "xhttps://a.com",
    "ftp://files.example.org/a.com",
    "zhang_san908@gmail.com",
    "pаypal.com",
    "a.com.evil.xyz",
    "-a.com",
    ".a.com",
    "/a.com",
    "example.com:8080/p?q=1#f",
    "www.example.co",
    "ｈｔｔｐｓ：／／ex.com",
    "a.coma.com",
    "，",
    "://",
    ".",
    " ",
    "-",
    "@",
]
_LINK_TEXTS = _texts_of(_LINK_PIECES, "ac.-/:@ ")


@settings(max_examples=500, deadline=None)
@given(_LINK_TEXTS)
def test_links_tried_where_the_gate_found_a_phrase_equal_searching_everywhere(text: str) -> None:
    """The link pattern tried only before each "://" and at the start of each domain holding
    a ".<tld>" the engine's gate found finds what searching the whole view finds."""
    normalized = NormalizedText(text)
    view = normalized.view
    gated = ScanContext(normalized, GATED._gate(view)[1])
    want = [m.span() for m in links.URL.finditer(view)]
    assert [m.span() for m in links._links_in(gated)] == want


def test_birth_dates_are_read_as_python_stdnum_reads_them() -> None:
    """``is_cn_id`` reads an ID's birth date itself; python-stdnum's ``get_birth_date``
    agrees on real dates, impossible ones (0229 of a common year, month 13, day 00) and
    dates before 1900 or after today."""
    import datetime

    from stdnum.cn import ric

    rng = random.Random(18)
    checked = 0
    for _ in range(3_000):
        year = rng.choice((rng.randint(1890, 2030), 1900, 2000, 2023, 2024))
        date = f"{year:04d}{rng.randint(0, 13):02d}{rng.choice((rng.randint(0, 32), 29, 31)):02d}"
        body = "110105" + date + f"{rng.randint(0, 999):03d}"
        total = sum(int(d) * pow(2, 17 - i, 11) for i, d in enumerate(body))
        number = body + "10x98765432"[total % 11]
        try:
            born = ric.get_birth_date(number.upper())
            want = 1900 <= born.year and born <= datetime.date.today()
        except Exception:
            want = False
        assert is_cn_id(number) == want, number
        checked += want
    assert checked > 300
