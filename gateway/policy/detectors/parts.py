"""A number given in parts in one message, its last digits named apart.

"身份证后四位002X，前面11010519491231", "后六位是31002X，前面是110105194912", "尾号5678，前七位
1380013", "last four 1111, the rest 411111111111": neither part is a number of its kind, and
each alone passes; together they are the whole ID, phone or card. The tail is found by its
phrase (a context rule); each digit run of the message (seven digits at least) is tried
before it, also with up to three of its last digits repeated at the tail's start ("前15位…
后四位…"). When none makes a number, two consecutive parts of the message are tried
together before it (three parts: "前六位110105，中间19491231，后四位002X", "starts with 4111,
then 1111 1111, last four 1111"). Only a combination that validates is reported -- an ID's
check character and birth date, a card's Luhn sum and issuer, a mainland mobile -- so an
order number and a card's last four stay apart. Every part is reported (rule ``parts``) and
masked whole: any "last N" of a part could be all of it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

from .base import Hit, ScanContext
from .card import is_card_number
from .cn_id import is_cn_id
from .context import ANNOUNCING_FILLER, context_rule, without_separators
from .phone import valid_cn_shaped

PARTS_RULE = "parts"
"""The rule of both parts of a number given in two (in ``HIDDEN_RULES``)."""
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
    """IDs, cards and mainland mobiles given as a tail after its phrase and the rest."""

    kinds = ("cn_id", "card", "phone")
    triggers = ()
    gate_phrases = TAIL_RULE.triggers
    exclusive = True

    def __init__(self) -> None:
        self._phrases = frozenset(TAIL_RULE.triggers)

    def scan(self, ctx: ScanContext) -> Iterator[Hit]:
        """Yield every part of each number the message gives in two or three parts."""
        view = ctx.view
        parts: list[tuple[int, int, str]] | None = None  # the message's parts, when asked
        for tail in TAIL_RULE.scan(view, ctx.phrase_spans(self._phrases)):
            last = view[tail.start : tail.end]
            found = _two_parts(ctx, tail, last)
            if found is None:
                if parts is None:
                    parts = [
                        (m.start(), m.end(), without_separators(m.group()))
                        for m in PART.finditer(view)
                    ]
                found = _three_parts(parts, tail, last)
            if found is not None:
                kind, spans = found
                for start, end in (*spans, (tail.start, tail.end)):
                    yield Hit(kind, start, end, PARTS_RULE)


def _two_parts(ctx: ScanContext, tail: Hit, last: str) -> _Parts | None:
    """The kind and span of the digit run that makes a number with the tail, if any."""
    for run in ctx.number_runs:
        if run.start <= tail.start < run.end or run.plus:
            continue
        kind = whole_number(run.joined, last)
        if kind is not None:
            return kind, ((run.start, run.end),)
    return None


def _three_parts(parts: list[tuple[int, int, str]], tail: Hit, last: str) -> _Parts | None:
    """The kind and spans of two consecutive parts (not the tail) that make a number with
    the tail, if any."""
    heads = [part for part in parts if part[1] <= tail.start or part[0] >= tail.end]
    for (a_start, a_end, a), (b_start, b_end, b) in itertools.pairwise(heads):
        kind = whole_number(a + b, last)
        if kind is not None:
            return kind, ((a_start, a_end), (b_start, b_end))
    return None
