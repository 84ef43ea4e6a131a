from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.policy.normalize import NormalizedText, fold


def test_view_undoes_common_evasions() -> None:
    assert fold("４１１１") == "4111"
    assert fold("PASS\u200bWORD") == "password"
    assert fold("銀行卡號碼") == "银行卡号码"
    assert fold("帳戶") == fold("账户") == fold("帐户")
    assert fold("刷単返利") == fold("刷单返利") == "刷单返利"  # a Japanese form (shinjitai)
    assert fold("転账 証件 保険") == "转账 证件 保险"
    assert fold("𝐩𝐚𝐬𝐬") == "pass"
    assert fold("٣٤٥") == "345"
    assert fold("pàss") == "pass"
    assert fold("ﬁ") == "fi"


def test_compact_drops_separators() -> None:
    assert NormalizedText("p.a.s.s w-o_r d").compact == "password"
    assert NormalizedText("銀 行 卡").compact == "银行卡"


def test_offsets_map_through_deletions_and_expansions() -> None:
    text = "\u200bﬁ ４\u200d1"
    n = NormalizedText(text)
    assert n.view == "fi 41"
    assert n.span_to_original(0, 2) == (1, 2)  # both letters of the ligature
    assert n.span_to_original(3, 5) == (3, 6)  # zero-width joiner inside the span


def test_lone_surrogates_are_plain_text() -> None:
    n = NormalizedText("a\ud800b帳")
    assert n.view == "a\ud800b账"
    assert n.to_original(3) == 3


_ALPHABET = st.sampled_from(
    [
        *"ab1２３ .-_",
        "\u200b",
        "\u200d",
        "ﬁ",
        "ß",
        "帳",
        "戶",
        "e\u0301",
        "\ud800",
        "①",
        "\U0001d41a",
        "\U000e0041",
        "\U0001f600",
        "\ufe0f",
        "。",
    ]
)


@given(st.lists(_ALPHABET, max_size=40).map("".join))
def test_every_view_char_comes_from_its_mapped_original(text: str) -> None:
    n = NormalizedText(text)
    for i, ch in enumerate(n.view):
        o = n.to_original(i)
        assert 0 <= o < len(text)
        assert ch in fold(text[o]) or fold(text[o]) in ("帐", "账", "户", "戶")
    for i in range(len(n.compact)):
        v = n.compact_to_view(i)
        assert n.view[v] == n.compact[i]


def test_digit_signs_fold_to_digits() -> None:
    """Signs that are a digit without being a decimal digit or having a compatibility
    mapping (dingbat circled digits, Ethiopic numbers) fold to ASCII digits like ４ and ①;
    the browser engine hard-codes their ranges, which this list pins."""
    import sys
    import unicodedata

    signs = [
        cp
        for cp in range(sys.maxunicode + 1)
        if not 0xD800 <= cp < 0xE000
        and any(
            unicodedata.decimal(c, None) is None and unicodedata.digit(c, None) is not None
            for c in unicodedata.normalize("NFKC", chr(cp))
        )
    ]
    ranges = [(0x1369, 0x1371), (0x19DA, 0x19DA), (0x24F5, 0x24FD), (0x24FF, 0x24FF)]
    ranges += [(0x2776, 0x277E), (0x2780, 0x2788), (0x278A, 0x2792), (0x10A40, 0x10A43)]
    ranges += [(0x10E60, 0x10E68), (0x11052, 0x1105A)]
    assert signs == [cp for lo, hi in ranges for cp in range(lo, hi + 1)]
    assert fold("❹❶➊➀⓵፩⓿") == "4111110"
