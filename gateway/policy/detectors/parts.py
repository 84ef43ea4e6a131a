"""A number given in parts in one message, its last or first digits named apart.

"身份证后四位002X，前面11010519491231", "后六位是31002X，前面是110105194912", "尾号5678，前七位
1380013", "last four 1111, the rest 411111111111": neither part is a number of its kind, and
each alone passes; together they are the whole ID, phone or card. The tail is found by its
phrase (a context rule); each digit run of the message (seven digits at least) is tried
before it, also with up to three of its last digits repeated at the tail's start ("前15位…
后四位…"). When none makes a number, two consecutive parts of the message are tried
together before it (three parts: "前六位110105，中间19491231，后四位002X", "starts with 4111,
then 1111 1111, last four 1111"). A head named by its phrase ("138开头，后面是00138000",
"前三位138，其余00138000", "starts with 4111, the rest 1111 1111 1111") is tried likewise
before each other part of the message, then before two consecutive ones after it. Only a
combination that validates is reported -- an ID's check character and birth date, a card's
Luhn sum and issuer, a mainland mobile -- so an order number and a card's last four stay
apart. Every part is reported (rule ``parts``) and masked whole: any "last N" of a part
could be all of it. Chinese numerals count as digits ("尾号八零零零，前七位一三八零零一三"), and
so do digit words ("starts with one three eight, then 0013 8000"), but the word of a phrase
("last four") stays a word.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

from .base import Hit, ScanContext
from .card import is_card_number
from .cn_id import is_cn_id
from .context import ANNOUNCING_FILLER, context_rule, without_separators
from .numbers import (
    DIGIT_WORD_SET,
    NumberRun,
    Respelt,
    find_number_runs,
    holds_digit_word,
    numerals_as_digits,
    words_as_digits,
)
from .phone import valid_cn_shaped

LEADING_PHRASES = ("开头", "打头")
"""Head phrases that may also follow the head ("138开头"): its digits are read back from
the phrase's start, past at most two spaces."""
_LEADING_SPACES = 2
_FEWEST_HEAD_DIGITS, _MOST_HEAD_DIGITS = 2, 8
"""How many digits a head holds: "13" of a mobile to "11010519" of an ID."""

PARTS_RULE = "parts"
"""The rule of every part of a number given in parts (in ``HIDDEN_RULES``)."""
TAIL_RULE = context_rule(
    "tail",
    "parts.tail",
    (
        "尾号",
        "后四位",
        "后4位",
        "末四位",
        "末4位",
        "最后四位",
        "最后4位",
        "后六位",
        "后6位",
        "末六位",
        "末6位",
        "最后六位",
        "最后6位",
        "last four",
        "last 4",
        "last six",
        "last 6",
        "ending in",
        "ends in",
        "ends with",
    ),
    ANNOUNCING_FILLER,
    r"(?<![0-9])[0-9]{3}+(?:[0-9]{2})?+[0-9x](?![0-9a-z])",
)
"""The last four or six characters of a number after their phrase: no finding of their
own."""
_HEAD_COUNTS = ("两", "二", "三", "四", "五", "六", "七", "八", *"2345678")
_HEAD_WORDS = ("two", "three", "four", "five", "six", "seven", "eight", *"2345678")
HEAD_RULE = context_rule(
    "head",
    "parts.head",
    (
        *(f"前{count}位" for count in _HEAD_COUNTS),
        *LEADING_PHRASES,
        *(f"first {count}" for count in _HEAD_WORDS),
        "starts with",
        "starting with",
        "begins with",
        "beginning with",
    ),
    ANNOUNCING_FILLER,
    rf"(?<![0-9])[0-9]{{{_FEWEST_HEAD_DIGITS},{_MOST_HEAD_DIGITS}}}+(?![0-9])",
)
"""The first two to eight digits of a number after their phrase: no finding of their own."""
_OVERLAP = 3
"""Digits the part before the tail may repeat at its end (its "first 15" and the "last 4")."""
_Parts = tuple[str, tuple[tuple[int, int], ...]]
"""The kind of the number some parts make with a tail, and the spans of those parts."""
PART = re.compile(r"(?<![0-9])[0-9]++(?:[ \-][0-9]++)*+(?![0-9])")
"""One part of a number as people write it, digits or groups of them set apart by a space
or a dash ("110105", "1111 1111"): two consecutive ones are tried together before a tail.
(Public for the end document, which carries it translated: ``policy/end.py``.)"""


def whole_number(head: str, tail: str) -> str | None:
    """The kind of the number ``head`` then ``tail`` make (``head``'s last digits may repeat
    ``tail``'s first ones), ``None`` when they make none."""
    for overlap in range(min(_OVERLAP, len(tail) - 1) + 1):
        if overlap and not head.endswith(tail[:overlap]):
            continue
        digits = head + tail[overlap:]
        if len(digits) == 18 and is_cn_id(digits):
            return "cn_id"
        if not digits.isdigit():
            continue
        if 13 <= len(digits) <= 19 and is_card_number(digits):
            return "card"
        if len(digits) == 11 and valid_cn_shaped(digits):
            return "phone"
    return None


class NumberPartsDetector:
    """IDs, cards and mainland mobiles given as a tail after its phrase and the rest, or as
    a head named by its phrase and the rest."""

    kinds = ("cn_id", "card", "phone")
    triggers = ()
    gate_phrases = (*TAIL_RULE.triggers, *HEAD_RULE.triggers)
    exclusive = True

    def __init__(self) -> None:
        self._tails = frozenset(TAIL_RULE.triggers)
        self._heads = frozenset(HEAD_RULE.triggers)

    def scan(self, ctx: ScanContext) -> Iterator[Hit]:
        """Yield every part of each number the message gives in two or three parts, in
        digits, Chinese numerals or digit words ("尾号八零零零，前七位一三八零零一三", "starts
        with one three eight, then 0013 8000"): the tail, heads and parts are read with each
        run of numerals as its digits (a numeral alone, the 四 of "后四位", stays a word) and,
        when the message holds digit words, with those written as digits too (the "four" of
        "last four" stays a word)."""
        tails, heads = ctx.phrase_spans(self._tails), ctx.phrase_spans(self._heads)
        spelt = _spelt(ctx, tails, heads)
        if spelt is None:
            yield from self._scan(numerals_as_digits(ctx.view), ctx.number_runs, tails, heads)
            return
        runs = find_number_runs(spelt.text, reversed_too=ctx.text.bidi_override)
        for hit in self._scan(numerals_as_digits(spelt.text), runs, None, None):
            yield Hit(hit.kind, *spelt.to_view(hit.start, hit.end), hit.rule)

    def _scan(
        self,
        view: str,
        runs: tuple[NumberRun, ...],
        tails: list[tuple[int, int]] | None,
        heads: list[tuple[int, int]] | None,
    ) -> Iterator[Hit]:
        """The parts of numbers in ``view``, whose digit runs are ``runs``; ``tails`` and
        ``heads`` are where their phrases are, when the engine's gate found them."""
        parts: list[_Part] | None = None  # the message's parts, when asked
        taken: list[tuple[int, int]] = []  # the spans of the parts reported
        for tail in TAIL_RULE.scan(view, tails):
            last = view[tail.start : tail.end]
            found = _two_parts(runs, tail, last)
            if found is None:
                if parts is None:
                    parts = _parts_of(view)
                found = _three_parts(parts, tail, last)
            if found is not None:
                kind, spans = found
                for start, end in (*spans, (tail.start, tail.end)):
                    taken.append((start, end))
                    yield Hit(kind, start, end, PARTS_RULE)
        for head in _heads(view, heads):
            if any(start < head.end and head.start < end for start, end in taken):
                continue
            if parts is None:
                parts = _parts_of(view)
            found = _after_head(view, parts, head)
            if found is not None:
                kind, spans = found
                for start, end in ((head.start, head.end), *spans):
                    taken.append((start, end))
                    yield Hit(kind, start, end, PARTS_RULE)


def _spelt(
    ctx: ScanContext, tails: list[tuple[int, int]] | None, heads: list[tuple[int, int]] | None
) -> Respelt | None:
    """The message with its digit words written as digits, the words of the tail and head
    phrases kept; ``None`` when it holds no other digit word (then the view itself is read:
    most messages, as the engine's gate tells without a search)."""
    view = ctx.view
    words = ctx.phrase_spans(DIGIT_WORD_SET)
    if words is not None and not holds_digit_word(view, words):
        return None
    if tails is None or heads is None:
        tails = [(start, end) for _, start, end in TAIL_RULE.phrases.find(view)]
        heads = [(start, end) for _, start, end in HEAD_RULE.phrases.find(view)]
    return words_as_digits(view, (*tails, *heads))


_Part = tuple[int, int, str]
"""One part of a number in a message: its start, its end and its digits."""


def _parts_of(view: str) -> list[_Part]:
    """The parts of numbers in the view (``PART``), each with its digits."""
    return [(m.start(), m.end(), without_separators(m.group())) for m in PART.finditer(view)]


def _heads(view: str, spans: list[tuple[int, int]] | None) -> Iterator[Hit]:
    """The heads named by their phrases: after one ("前三位138", "starts with 4111"), and
    before one that may follow its head ("138开头")."""
    if spans is None:
        spans = [(start, end) for _, start, end in HEAD_RULE.phrases.find(view)]
    yield from HEAD_RULE.scan(view, spans)
    for start, end in spans:
        if view[start:end] in LEADING_PHRASES:
            head = _digits_before(view, start)
            if head is not None:
                yield head


def _digits_before(view: str, at: int) -> Hit | None:
    """The head whose digits end at ``at``, past at most two spaces, if any."""
    end = at
    while end > at - _LEADING_SPACES and end and view[end - 1] == " ":
        end -= 1
    start = end
    while start > end - _MOST_HEAD_DIGITS - 1 and start and "0" <= view[start - 1] <= "9":
        start -= 1
    if not _FEWEST_HEAD_DIGITS <= end - start <= _MOST_HEAD_DIGITS:
        return None
    return Hit("head", start, end, HEAD_RULE.rule)


def _after_head(view: str, parts: list[_Part], head: Hit) -> _Parts | None:
    """The kind and spans of the part (or two consecutive parts) of the message that make a
    number after the head, if any: those after it first. A part's trailing ``x`` counts
    (an ID's check character)."""
    first = view[head.start : head.end]
    after = [_with_check_x(view, part) for part in parts if part[0] >= head.end]
    before = [_with_check_x(view, part) for part in parts if part[1] <= head.start]
    for start, end, rest in (*after, *before):
        kind = whole_number(first, rest)
        if kind is not None:
            return kind, ((start, end),)
    for digits, spans in _consecutive(after):
        kind = whole_number(first, digits)
        if kind is not None:
            return kind, spans
    return None


def _with_check_x(view: str, part: _Part) -> _Part:
    """The part with the ``x`` right after it, when one ends it ("19491231002X")."""
    start, end, digits = part
    if view[end : end + 1] == "x" and not view[end + 1 : end + 2].isalnum():
        return start, end + 1, digits + "x"
    return part


def _two_parts(runs: tuple[NumberRun, ...], tail: Hit, last: str) -> _Parts | None:
    """The kind and span of the digit run that makes a number with the tail, if any."""
    for run in runs:
        if run.start <= tail.start < run.end or run.plus:
            continue
        kind = whole_number(run.joined, last)
        if kind is not None:
            return kind, ((run.start, run.end),)
    return None


def _three_parts(parts: list[_Part], tail: Hit, last: str) -> _Parts | None:
    """The kind and spans of two consecutive parts (not the tail) that make a number with
    the tail, if any."""
    heads = [part for part in parts if part[1] <= tail.start or part[0] >= tail.end]
    for digits, spans in _consecutive(heads):
        kind = whole_number(digits, last)
        if kind is not None:
            return kind, spans
    return None


def _consecutive(parts: list[_Part]) -> Iterator[tuple[str, tuple[tuple[int, int], ...]]]:
    """Each two consecutive parts read as one: their digits together, and their spans."""
    for (a_start, a_end, a), (b_start, b_end, b) in itertools.pairwise(parts):
        yield a + b, ((a_start, a_end), (b_start, b_end))
