"""IBANs: country code, check digits, then the country's exact length and mod-97 check.

The regex only finds a start (``de89``, then the account with the separators digit runs
allow between any two of its characters); the candidate is then cut to its country's IBAN
length (one per country in schwifty's registry) and validated as schwifty validates an IBAN
(the BBAN format of its registry and the check digits), so trailing words never glue onto
the number and invalid check digits are never masked.
"""

from __future__ import annotations

import bisect
import functools
import re
import string
from collections.abc import Callable, Iterator
from typing import NamedTuple

from schwifty import registry
from schwifty.exceptions import SchwiftyException

from .base import Hit, ScanContext
from .numbers import MAX_SEPARATOR

_SEPARATOR = rf"(?:\s++|[\W_]{{0,{MAX_SEPARATOR}}}+)"
_START = re.compile(rf"[a-z](?<![a-z0-9].)[a-z][0-9]{{2}}(?:{_SEPARATOR}[a-z0-9]){{10,32}}+")
"""A country code and check digits as IBANs are written (``de89``, no letter or digit before
it), then the account, with the separators digit runs allow between any two of its
characters (spaces and newlines, runs of them of any length, ``/``, ``.``, ``_``, every dash:
"DE89\\n3704\\n0044…" is an IBAN as much as "DE89 3704 0044…"). The look-behind sits after
the first letter so the pattern starts with a character class (the regex engine then skips
ahead in C instead of testing every position), and a letter must be followed by a letter
and a digit right away, so a word start costs a step or two."""
_LOOSE_START = re.compile(
    rf"[a-z](?<![a-z0-9].){_SEPARATOR}[a-z]{_SEPARATOR}[0-9]{_SEPARATOR}[0-9]"
    rf"(?:{_SEPARATOR}[a-z0-9]){{10,32}}+"
)
"""``_START`` with separators inside the country code and check digits too ("IBAN G B 8 2 W E
S T 1 2 3 4 …"): used when the message says "iban", as the strict start needs a letter and a
digit side by side, which such a number never has."""
_NOT_ALNUM = re.compile(r"[\W_]+")


class IbanDetector:
    """International bank account numbers."""

    kinds = ("iban",)
    triggers = ()
    gate_phrases = (*(a + d for a in string.ascii_lowercase for d in string.digits), "iban")
    """A letter directly followed by a digit (inside every ``_START`` match, and rare in
    chat): 260 phrases of the engine's gate automaton, where a pattern would have to stop
    at every digit of every order number; and "iban", which opens ``_LOOSE_START``."""
    exclusive = True

    def __init__(self) -> None:
        prepare_schwifty()  # now, not on the first IBAN a message holds

    def scan(self, ctx: ScanContext) -> Iterator[Hit]:
        """Yield valid IBANs. (Not only in views with a run of seven digits: an IBAN's
        account part may hold letters, "BG61 BUIN 9863 90JQ C0TD AU" holds six in a row.)

        A candidate that is no IBAN is searched again from its second character, and the
        search goes on after an IBAN's last character: a candidate may swallow the start of
        the next one ("AB12 DE89 3704…", two IBANs written one after the other)."""
        view = ctx.view
        search = _search_for(ctx)
        pos = 0
        while (m := search(view, pos)) is not None:
            text = m.group()
            chars = _NOT_ALNUM.sub("", text)
            country = _country_format(chars[:2])
            if (
                country is not None
                and country.length <= len(chars)
                and _is_iban(chars[: country.length], country)
            ):
                pos = m.start() + _span_of(text, country.length)
                yield Hit("iban", m.start(), pos, "iban.mod97")
            else:
                pos = m.start() + 1


_LETTER_DIGIT = frozenset(a + d for a in string.ascii_lowercase for d in string.digits)


def _search_for(ctx: ScanContext) -> Callable[[str, int], re.Match[str] | None]:
    """``_LOOSE_START.search`` when the message says "iban"; otherwise ``_START.search``, or
    its twin that tries ``_START`` only one character before each letter-digit pair the
    engine's gate found: every ``_START`` match starts there (the "d" of "de89", whose "e8"
    is a gate phrase). On a line of English prose the search stops at every letter (~15 us
    a 500-character line); most lines that open the gate hold a few such pairs (e-mails and
    order numbers: "zhang_san908@", "ORD8823")."""
    if "iban" in ctx.view:
        return _LOOSE_START.search
    spans = ctx.phrase_spans(_LETTER_DIGIT)
    if spans is None:
        return _START.search
    starts = sorted({start - 1 for start, _ in spans if start})
    match = _START.match

    def search(view: str, pos: int) -> re.Match[str] | None:
        for start in starts[bisect.bisect_left(starts, pos) :]:
            if (m := match(view, start)) is not None:
                return m
        return None

    return search


def _is_iban(candidate: str, country: _CountryFormat) -> bool:
    """Whether ``candidate`` (lower case letters and digits, ``country``'s length) is a
    valid IBAN as written, or once homoglyphs where its country's format has digits are read
    as the digits they stand for ("DE89 3704 0044 0532 0130 OO": o, i and l for 0, 1, 1; a
    letter where the format allows letters stays a letter)."""
    if _valid(candidate, country):
        return True
    if _HOMOGLYPHS.keys().isdisjoint(candidate):
        return False
    undone = "".join(
        _HOMOGLYPHS.get(c, c) if kind == "n" else c
        for c, kind in zip(candidate, country.kinds, strict=True)
    )
    return undone != candidate and _valid(undone, country)


_HOMOGLYPHS = {"o": "0", "i": "1", "l": "1"}


class _CountryFormat(NamedTuple):
    """A country's IBANs as schwifty's registry describes them."""

    length: int
    """Each country has one length, and schwifty refuses any other, so a candidate is cut
    to it instead of tried at every length from 15 to 34."""
    kinds: str
    """What each position holds: ``n`` a digit, ``a`` a letter, ``c`` either (the BBAN
    format, "8!n10!n" for DE); the country code is ``a``, the check digits are ``n``."""
    bban: re.Pattern[str]
    """The BBAN's structure as schwifty checks it (its registry's pattern)."""


@functools.cache
def _country_format(country: str) -> _CountryFormat | None:
    """``country``'s IBAN format (``None``: no IBANs there), read once per country."""
    try:
        spec = registry.get_iban_spec(country.upper())
    except SchwiftyException:
        return None
    parts = re.findall(r"(\d+)!?([a-z])", spec.bban_spec)
    kinds = "aann" + "".join(kind * int(count) for count, kind in parts)
    return _CountryFormat(int(spec.iban_length), kinds, spec.regex)


_NUMERIC = str.maketrans({c: str(ord(c) - ord("a") + 10) for c in string.ascii_lowercase})


def _mod97(chars: str) -> bool:
    """The ISO 7064 mod-97 check of an IBAN candidate (lower case letters and digits):
    ``chars[4:]`` then the first four, letters as 10..35, mod 97 is 1. Passed by every valid
    IBAN."""
    return int((chars[4:] + chars[:4]).translate(_NUMERIC)) % 97 == 1


def _span_of(text: str, count: int) -> int:
    """Length of the prefix of ``text`` (a ``_START`` match: letters a-z, digits and
    separators) that holds ``count`` letters and digits."""
    seen = 0
    for i, c in enumerate(text):
        if c.isalnum():
            seen += 1
            if seen == count:
                return i + 1
    return len(text)


@functools.cache
def prepare_schwifty() -> None:
    """Read schwifty's IBAN registry now, once per process: schwifty reads its JSON files
    when the first country is looked up, and the message holding it waited ~4 ms for them."""
    _country_format("de")


_STRUCTURE = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]+")
"""What schwifty's ``IBAN`` takes for one at all (its ``_IBAN_STRUCTURE_RE``)."""


def _valid(candidate: str, country: _CountryFormat) -> bool:
    """A real IBAN as ``schwifty.IBAN(candidate)`` judges one (and a test holds them
    equal): letters and digits, the country's length and BBAN structure from schwifty's
    registry (generated from SWIFT's IBAN registry), and check digits that the ISO 7064
    mod-97-10 algorithm computes -- 02 to 98, the aliases 00, 01 and 99 pass the bare mod-97
    test but are never issued. Read directly: building the ``IBAN`` object, and its
    exception for an invalid one, took 5-15 us a call."""
    if not _mod97(candidate):  # the cheapest test, and the one most candidates fail
        return False
    upper = candidate.upper()
    return (
        len(upper) == country.length
        and _STRUCTURE.fullmatch(upper) is not None
        and country.bban.match(upper[4:]) is not None
        and 2 <= int(upper[2:4]) <= 98
    )
