"""Digit runs: the shared candidates of every numeric detector (cards, IDs, phones).

A run is a chain of digit *tokens* joined by short separator runs, found on the normalised
view. Tokens undo the ways people spell a number so a filter misses it:

* ASCII digits (the view already maps full-width and other-script digits to ASCII);
* Chinese numerals and financial capitals, one per digit (一三八, 壹叁捌, 〇/零, 两, 幺);
* English digit words and toneless pinyin on word boundaries ("four one one", "yao san ba"),
  the way numbers are read aloud too: "oh" for zero next to another digit word, "double" and
  "triple" before one ("one three eight double oh one three eight triple oh");
* homoglyphs glued to digits (``O``->0, ``l``/``I``/``|``->1) when no other letter touches
  them ("4111 l111" but not "hello1");
* an ``x`` right after digits (the check character of a PRC ID).

Separators are any run of up to ``MAX_SEPARATOR`` non-alphanumeric characters: spaces, tabs,
newlines, ``/``, ``,``, ``_``, every Unicode dash and minus; and a run of whitespace of any
length (groups set lines or a screen apart still read as one number). Detectors try
*windows* of consecutive digit groups, so a card followed by a CVV, or a phone next to an
order number, is still found; validation (Luhn + issuer, ID checksum, libphonenumber) keeps
precision. Runs are never cut into chunks: a number is found wherever it sits in a long run
(windows are bounded per start, so the work stays linear). When the message held a bidi
override, each run is also offered reversed (``\u202e`` + reversed digits renders as the
real number). Every pattern is possessive or bounded: no input makes them backtrack.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from ..phrases import Phrases

MAX_SEPARATOR = 12
"""Longest separator run inside a number ("4111    1111", "4111\n1111", "4111 / 1111")."""

_CJK_DIGITS = {
    "〇": "0",
    "零": "0",
    "一": "1",
    "二": "2",
    "三": "3",
    "四": "4",
    "五": "5",
    "六": "6",
    "七": "7",
    "八": "8",
    "九": "9",
    "两": "2",
    "幺": "1",
    "壹": "1",
    "贰": "2",
    "叁": "3",
    "参": "3",
    "肆": "4",
    "伍": "5",
    "陆": "6",
    "柒": "7",
    "捌": "8",
    "玖": "9",
}
_WORDS = {
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ling": "0",
    "yi": "1",
    "yao": "1",
    "er": "2",
    "liang": "2",
    "san": "3",
    "si": "4",
    "wu": "5",
    "liu": "6",
    "qi": "7",
    "ba": "8",
    "jiu": "9",
    "oh": "0",
}
_REPEATS = {"double": 2, "triple": 3}
"""Words that repeat the digit word after them, as numbers are read aloud."""
_SPOKEN_ONLY = frozenset({"oh", *_REPEATS})
"""Words that are digits only next to another digit word ("oh, I see" is no zero)."""
_SPOKEN_GAP = re.compile(r"[ ,\-]{1,3}+")
"""What may stand between a spoken-only word and the digit word it leans on."""
_HOMOGLYPHS = {"o": "0", "l": "1", "i": "1", "|": "1"}
_CJK_CLASS = "".join(_CJK_DIGITS)
_SOFT = re.compile(r"[ \-.]{1,3}+")
_SEPARATOR = re.compile(rf"[\W_]{{1,{MAX_SEPARATOR}}}+")
_BLANK = re.compile(r"\s++")
"""Whitespace of any length between two groups ("4111" and "1111" thirteen newlines apart)."""


LONG_RUN = 24
"""Digits beyond any single number (cards 19, IDs 18): a run this long is several numbers or
filler, so its leading/trailing groups are tried on their own."""

MIN_RUN_DIGITS = 7
"""The shortest number any numeric detector reports (a local phone number)."""

DIGIT_OR_NUMERAL = rf"[0-9{_CJK_CLASS}]"
"""A digit or a Chinese numeral (with the digit words, what makes a text number-like:
``number_like``)."""
_RUN_CHAR = rf"[0-9{_CJK_CLASS}oil|x]"
SEVEN_DIGITS = (
    rf"\A(?=[^0-9{_CJK_CLASS}]*+{DIGIT_OR_NUMERAL})"
    rf"(?:[^0-9{_CJK_CLASS}oil|x]*+{_RUN_CHAR}){{{MIN_RUN_DIGITS}}}"
)
"""The numeric detectors' gate pattern: a digit or numeral, and ``MIN_RUN_DIGITS`` characters
that can be a run's digits (digits, numerals, the homoglyphs o, i, l and |, a check
character x). Every digit of a run comes from one such character, digit words aside (the
detectors' gate phrases, ``DIGIT_WORDS``, open them for those), and runs shorter than
``MIN_RUN_DIGITS`` are dropped: a view without them holds nothing a numeric detector looks
at. Chinese text with a numeral in a word (一下, 两个) stays closed. Anchored and possessive:
one pass in C."""
DIGIT_WORDS = tuple(w for w in _WORDS if w not in _SPOKEN_ONLY)
DIGIT_WORD_SET = frozenset(DIGIT_WORDS)
_DIGIT_OR_NUMERAL = re.compile(DIGIT_OR_NUMERAL)
_ASCII_WORD = re.compile("[a-z]+")


def number_like(text: str) -> bool:
    """Whether a message's text, as typed, holds something number-like: a digit, a Chinese
    numeral, or a digit word standing alone ("four one one one", "yao san ba"). The
    cross-message window keeps a message's tail only while it holds one, and reads the next
    message with it only when that one starts with one (``split.py``). The words are looked
    up among the text's runs of letters: a regex for the words before a non-letter tries
    half the letters of English text (4 us on a 48-character tail, this 2 us)."""
    if _DIGIT_OR_NUMERAL.search(text) is not None:
        return True
    return not DIGIT_WORD_SET.isdisjoint(_ASCII_WORD.findall(text.lower()))


class Window(NamedTuple):
    """Consecutive digit groups of a run: their digits and their span in the view.

    Named tuples, not dataclasses: a message makes dozens of windows and runs, and a frozen
    dataclass pays an ``object.__setattr__`` per field on creation."""

    digits: str
    start: int
    end: int
    plus: bool


class NumberRun(NamedTuple):
    """One run of digit groups; ``groups`` are (start, end, digits) in view coordinates.
    Made with ``number_run`` (which lays the digits out once: every numeric detector walks
    the same runs)."""

    start: int
    end: int
    plus: bool
    groups: tuple[tuple[int, int, str], ...]
    hard: tuple[int, ...]
    """Indices of groups preceded by a *hard* separator (anything but one to three spaces,
    dashes or dots): a run split there is also tried piecewise by the phone detector."""
    joined: str
    """The run's digits (and trailing x), group after group."""
    offsets: tuple[int, ...]
    """Where each group's digits start in ``joined``, and ``len(joined)`` last."""

    @property
    def digit_count(self) -> int:
        """How many digits (and trailing x) the run holds."""
        return len(self.joined)

    def reversed(self) -> NumberRun:
        """The run read backwards (what a right-to-left override displays)."""
        n = len(self.groups)
        total = len(self.joined)
        return NumberRun(
            self.start,
            self.end,
            False,
            tuple((s, e, d[::-1]) for s, e, d in reversed(self.groups)),
            tuple(sorted(n - k for k in self.hard)),
            self.joined[::-1],  # each group reversed, in reverse order
            tuple(total - o for o in reversed(self.offsets)),
        )

    def segments(self, min_digits: int = MIN_RUN_DIGITS) -> Iterator[NumberRun]:
        """The parts of the run between hard separators holding at least ``min_digits``
        digits (nothing when the run has one part)."""
        if not self.hard:
            return
        bounds = [0, *self.hard, len(self.groups)]
        for a, b in itertools.pairwise(bounds):
            if self.offsets[b] - self.offsets[a] >= min_digits:
                part = self.groups[a:b]
                yield number_run(part[0][0], part[-1][1], self.plus and a == 0, part)

    def blocks(self, lo: int, hi: int) -> Iterator[Window]:
        """The whole run and each unbroken digit block, if they hold ``lo``..``hi`` digits."""
        if lo <= len(self.joined) <= hi:
            yield Window(self.joined, self.start, self.end, self.plus)
        if len(self.groups) > 1:
            for k, (start, end, digits) in enumerate(self.groups):
                if lo <= len(digits) <= hi:
                    yield Window(digits, start, end, self.plus and k == 0)

    def ends(self, lo: int, hi: int) -> Iterator[Window]:
        """In a run too long to be one number, the trailing and the leading groups holding
        ``lo``..``hi`` digits (a phone after a filler of digits, or before one)."""
        if self.digit_count <= LONG_RUN or len(self.groups) < 2:
            return
        for order in (reversed(self.groups), iter(self.groups)):
            picked: list[tuple[int, int, str]] = []
            total = 0
            for group in order:
                if total + len(group[2]) > hi:
                    break
                picked.append(group)
                total += len(group[2])
                if total >= lo and len(picked) > 1:
                    first, last = min(picked), max(picked)
                    yield Window(
                        "".join(g[2] for g in sorted(picked)),
                        first[0],
                        last[1],
                        self.plus and first is self.groups[0],
                    )

    def windows(self, lo: int, hi: int, first: str = "0123456789") -> Iterator[Window]:
        """Windows of consecutive groups holding ``lo``..``hi`` digits, longest first per start;
        only windows whose first digit is in ``first`` (a cheap issuer/region prefilter)."""
        return self.claim(lo, hi, first, lambda digits: True, claim_all=True)

    def claim(
        self, lo: int, hi: int, first: str, accept: Callable[[str], bool], claim_all: bool = False
    ) -> Iterator[Window]:
        """Accepted windows, left to right, longest first per start, never overlapping an
        earlier accepted one (``claim_all``: every window, overlapping or not). A window that
        ends in a spelt word yields to a shorter accepted one from the same start that does
        not: "6011 0500 4040 4849 ba" is a 16-digit card and a word, not a 17-digit card.

        Only the group ends whose digit total falls in ``lo..hi`` are visited (bisected), and
        ``accept`` sees the digits before any object is built, so a long run costs a few
        string slices per group.
        """
        groups, joined = self.groups, self.joined
        n = len(groups)
        forward = groups[0][0] <= groups[-1][0]
        single = len(joined) == n  # every group one digit (no group is empty)
        if n > 1 and len(joined) <= LONG_RUN and (single or _read_out(groups)):
            # Spelt digit by digit ("四 一 一 …", "four one …", "double four oh …"): the run
            # is ONE number; a window inside it is a coincidence (a wrong ID holds a
            # Luhn-valid 16 digits).
            if lo <= len(joined) <= hi and joined[0] in first and accept(joined):
                yield Window(
                    joined,
                    min(groups[0][0], groups[-1][0]),
                    max(groups[0][1], groups[-1][1]),
                    self.plus,
                )
            return
        if single:  # one digit per group (spaced digit by digit): no bisecting
            yield from self._claim_single(joined, lo, hi, first, accept, claim_all, forward)
            return
        if n == 1:  # most runs: the only window is the run itself
            if lo <= len(joined) <= hi and joined[0] in first and accept(joined):
                yield Window(joined, self.start, self.end, self.plus)
            return
        yield from self._claim_groups(lo, hi, first, accept, claim_all, forward)

    def _claim_groups(
        self,
        lo: int,
        hi: int,
        first: str,
        accept: Callable[[str], bool],
        claim_all: bool,
        forward: bool,
    ) -> Iterator[Window]:
        """``claim`` walking every group's windows (bisected). ``claim`` takes a shortcut for
        a run of one group; a test holds the two equal."""
        groups, joined, offsets = self.groups, self.joined, self.offsets
        taken = (-1, -1)  # the last accepted span (reversed runs go right to left)
        n = len(groups)
        for i in range(n):
            g_start, g_end, g_digits = groups[i]
            if g_digits[0] not in first or (
                not claim_all and g_start < taken[1] and g_end > taken[0]
            ):
                continue
            base = offsets[i]
            chosen: Window | None = None  # longest accepted; one not ending in a word wins
            j_lo = bisect.bisect_left(offsets, base + lo, i + 1) - 1
            j_hi = bisect.bisect_right(offsets, base + hi, i + 1) - 2
            for j in range(min(j_hi, n - 1), max(j_lo, i) - 1, -1):
                total = offsets[j + 1] - base
                if total < lo or total > hi:
                    continue
                if forward:
                    start, end = g_start, groups[j][1]
                else:
                    start, end = groups[j][0], g_end
                if not claim_all and start < taken[1] and end > taken[0]:
                    continue
                digits = joined[base : offsets[j + 1]]
                if not accept(digits):
                    continue
                window = Window(digits, start, end, self.plus and i == 0)
                if claim_all:
                    yield window
                    continue
                chosen = chosen or window
                if not _spelt(groups[j]):
                    chosen = window
                    break
            if chosen is not None:
                yield chosen
                taken = (chosen.start, chosen.end)

    def _claim_single(
        self,
        joined: str,
        lo: int,
        hi: int,
        first: str,
        accept: Callable[[str], bool],
        claim_all: bool,
        forward: bool,
    ) -> Iterator[Window]:
        """``claim`` for runs of one-digit groups: window ``[i, i + n)`` is a plain slice."""
        groups = self.groups
        n = len(joined)
        taken_until = -1  # in group indices
        lengths = range(min(hi, n), lo - 1, -1)
        for i in range(n):
            if i < taken_until or joined[i] not in first:
                continue
            chosen = 0  # the length claimed from i (see ``claim``: words yield)
            for length in lengths:
                if i + length > n or not accept(joined[i : i + length]):
                    continue
                if claim_all:
                    yield self._single(joined, i, length, forward)
                    continue
                chosen = chosen or length
                if not _spelt(groups[i + length - 1]):
                    chosen = length
                    break
            if chosen:
                yield self._single(joined, i, chosen, forward)
                taken_until = i + chosen

    def _single(self, joined: str, i: int, length: int, forward: bool) -> Window:
        """The window of one-digit groups ``[i, i + length)``."""
        a, b = self.groups[i], self.groups[i + length - 1]
        start, end = (a[0], b[1]) if forward else (b[0], a[1])
        return Window(joined[i : i + length], start, end, self.plus and i == 0)


def _read_out(groups: tuple[tuple[int, int, str], ...]) -> bool:
    """Whether every group is one digit or a spelt word ("double four" is two digits)."""
    return all(len(digits) == 1 or end - start > len(digits) for start, end, digits in groups)


def _spelt(group: tuple[int, int, str]) -> bool:
    """Whether a group was written as a word ("ba", "four"): in the view a word is longer than
    its digits, digits and numerals are one character each."""
    return group[1] - group[0] > len(group[2])


def number_run(
    start: int,
    end: int,
    plus: bool,
    groups: tuple[tuple[int, int, str], ...],
    hard: tuple[int, ...] = (),
) -> NumberRun:
    """A ``NumberRun`` with its digits laid out."""
    if len(groups) == 1:  # most runs (an order number, a phone written without spaces)
        joined = groups[0][2]
        return NumberRun(start, end, plus, groups, hard, joined, (0, len(joined)))
    digits = [g[2] for g in groups]
    offsets = tuple(itertools.accumulate(map(len, digits), initial=0))
    return NumberRun(start, end, plus, groups, hard, "".join(digits), offsets)


_DIGITISH = re.compile(rf"[0-9{_CJK_CLASS}][0-9{_CJK_CLASS}oil|x]*+")
"""A chunk of digits/numerals with glued homoglyphs and check characters. Every pattern of the
tokenizer starts with a character class or a literal, so the regex engine skips ahead in C
(one alternation with lookbehinds in front made it test every position: 3x slower)."""
_WORD_PHRASES = Phrases([*_WORDS.items(), *((w, w) for w in _REPEATS)])
_LONE_AFTER = re.compile(
    rf"[\W_]{{1,{MAX_SEPARATOR}}}?([oil|x](?<![a-z0-9|].)[oil|x]{{0,3}}+)(?![a-z0-9])"
)
"""Homoglyphs alone (neither a letter nor a digit touches them) a short separator run after a
token. Only there can they join a run: ``_flush`` drops such groups at a run's start, so the
view is never scanned for them at large (every o, i and l of English text would stop it)."""
_TO_DIGIT = str.maketrans({**_CJK_DIGITS, **_HOMOGLYPHS})
_NUMBERISH_RUN = re.compile(f"{DIGIT_OR_NUMERAL}{{2,}}")


def numerals_as_digits(view: str) -> str:
    """``view`` with each Chinese numeral and financial capital written as its digit where
    it stands in a run of numerals and digits ("尾号八零零零" -> "尾号8000"), one character for
    one, so offsets stay; for the detectors that read short numbers by pattern. A numeral
    alone stays a word: the 四 of "后四位" is no part of a number."""
    if view.isascii():
        return view
    # a run holds digits and numerals only: ``_TO_DIGIT``'s homoglyphs never apply
    return _NUMBERISH_RUN.sub(lambda m: m.group().translate(_TO_DIGIT), view)


Token = tuple[int, int, str, str]
"""(start, end, digits, kind) of one digit token in the view (see ``_tokens``)."""


_WORD_GAP = re.compile(r"[ \-]{1,3}+")
"""What may stand between two digit words of one group ("one three eight", "one-three-
eight"): dropped when they are written as digits."""


class Respelt(NamedTuple):
    """A view with its digit words written as digits ("starts with one three eight" ->
    "starts with 138"), and the span of the view each of its characters came from: what
    reads short numbers by pattern (a number's parts) sees spoken digits as digits, and
    what it finds is reported where the words stand."""

    text: str
    starts: list[int]
    ends: list[int]

    def to_view(self, start: int, end: int) -> tuple[int, int]:
        """The view's span of ``text[start:end]`` (a non-empty span)."""
        return self.starts[start], self.ends[end - 1]


def words_as_digits(view: str, kept: Iterable[tuple[int, int]] = ()) -> Respelt | None:
    """``view`` with each digit word (``_digit_words``: "one", "yao", "double oh") written
    as its digits, the gap between two of them dropped, except words that overlap a span of
    ``kept`` (the "four" of "last four"); ``None`` when no other word is there."""
    kept = tuple(kept)
    words = [
        word
        for word in sorted(_digit_words(view))
        if not any(start < word[1] and word[0] < end for start, end in kept)
    ]
    if not words:
        return None
    pieces: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    at = -1  # where the last word ended
    for start, end, digits, _ in words:
        copied = 0 if at < 0 else at
        if at < 0 or _WORD_GAP.fullmatch(view, at, start) is None:
            pieces.append(view[copied:start])
            starts.extend(range(copied, start))
            ends.extend(range(copied + 1, start + 1))
        pieces.append(digits)
        starts.extend([start] * len(digits))
        ends.extend([end] * len(digits))
        at = end
    pieces.append(view[at:])
    starts.extend(range(at, len(view)))
    ends.extend(range(at + 1, len(view) + 1))
    return Respelt("".join(pieces), starts, ends)


def holds_digit_word(view: str, spans: Iterable[tuple[int, int]]) -> bool:
    """Whether one of ``spans`` (where ``DIGIT_WORDS`` phrases occur in ``view``) is a word
    of its own, no letter on either side ("one", not the "one" of "phone")."""
    return any(
        view[start:end] in DIGIT_WORD_SET
        and not letter_at(view, start - 1)
        and not letter_at(view, end)
        for start, end in spans
    )


def letter_at(view: str, pos: int) -> bool:
    """Whether ``view[pos]`` exists and is a letter a-z (the view is lower-cased)."""
    return 0 <= pos < len(view) and "a" <= view[pos] <= "z"


def _digit_words(view: str) -> list[Token]:
    """The digit-word tokens: a word of ``_WORDS`` with no letter on either side. Found with
    the phrase automaton, not a regex: a regex over the alternation would stop at every
    letter that can start a word (half the letters of English text)."""
    values = _WORD_PHRASES.values
    words = [
        (start, end, values[index], "w")
        for index, start, end in _WORD_PHRASES.find(view)
        if not letter_at(view, start - 1) and not letter_at(view, end)
    ]
    if any(view[start:end] in _SPOKEN_ONLY for start, end, _, _ in words):
        return _spoken(view, sorted(words))
    return words


def _spoken(view: str, words: list[Token]) -> list[Token]:
    """Digit words as numbers are read aloud: "double"/"triple" and the digit word right
    after it become one token of that digit repeated; "oh" is a zero only next to another
    digit word (within ``_SPOKEN_GAP``). A repeat word before anything else is dropped."""

    def gap(a: Token, b: Token) -> bool:
        return _SPOKEN_GAP.fullmatch(view, a[1], b[0]) is not None

    merged: list[Token] = []
    skip = False
    for k, word in enumerate(words):
        if skip:
            skip = False
            continue
        times = _REPEATS.get(word[2])
        if times is None:
            merged.append(word)
            continue
        after = words[k + 1] if k + 1 < len(words) else None
        if after is not None and after[2] not in _REPEATS and gap(word, after):
            merged.append((word[0], after[1], after[2] * times, "w"))
            skip = True
    return [
        word
        for k, word in enumerate(merged)
        if view[word[0] : word[1]] != "oh"
        or (k and gap(merged[k - 1], word))
        or (k + 1 < len(merged) and gap(word, merged[k + 1]))
    ]


def _tokens(view: str, words_too: bool = True) -> list[Token]:
    """(start, end, digits, kind) of every digit token, sorted; kind is ``d`` (digits, with
    glued homoglyphs), ``n`` (Chinese numerals), ``w`` (a digit word; not looked for unless
    ``words_too``), ``h`` (homoglyphs alone) or ``x`` (a lone x)."""
    out: list[Token] = []
    homoglyphs = "oil|x"
    for m in _DIGITISH.finditer(view):
        start, end = m.span()
        chunk = m[0]
        # glued homoglyphs at the end count only when no letter follows ("1lo" + "ng" no)
        if chunk[-1] in homoglyphs:
            while chunk[-1] in homoglyphs and letter_at(view, end):
                chunk, end = chunk[:-1], end - 1
        # glued homoglyphs (and a reversed ID's x) in front, if no letter precedes them
        if start and view[start - 1] in homoglyphs:
            lead = start - 1
            while lead > 0 and view[lead - 1] in homoglyphs:
                lead -= 1
            if not letter_at(view, lead - 1):
                chunk, start = view[lead:start] + chunk, lead
        if chunk.isdigit():  # ASCII digits only (most chunks)
            out.append((start, end, chunk, "d"))
        elif len(pieces := _SCRIPT_PIECE.findall(chunk)) == 2:
            out.extend(_script_pieces(pieces, start))
        else:
            out.append((start, end, chunk.translate(_TO_DIGIT), "d"))
    words = _digit_words(view) if words_too else []
    if out or words:
        out.extend(words)
        out.extend(_lone_tokens(view, out))
        out.sort()
    return out


_SCRIPT_PIECE = re.compile(rf"[0-9oil|x]++|[{_CJK_CLASS}]++")


def _script_pieces(pieces: list[str], start: int) -> Iterator[Token]:
    """A chunk of ASCII digits then Chinese numerals (or the other way round) as two tokens,
    kind ``d`` and ``n``: runs put a group boundary between them, so a number next to a
    numeral that is a word is still a number of its own ("13800138000一直打不通": 一直 is
    "always"; "两个", "一张") while a number written half in numerals is still found whole,
    across both groups ("一三八00138000"). A chunk that changes more often ("138零零13八000",
    "四四O三O五l九…") stays one token: it is one number spelt to dodge the filter, and
    groups inside it would offer windows that are no number."""
    for text in pieces:
        kind = "n" if text[0] in _CJK_DIGITS else "d"
        digits = text if text.isdigit() else text.translate(_TO_DIGIT)
        yield (start, start + len(text), digits, kind)
        start += len(text)


def _lone_tokens(view: str, anchors: list[Token]) -> list[Token]:
    """The lone homoglyph tokens (kind ``h``) and lone check characters (kind ``x``: "x",
    or homoglyphs ending in one, "lx") that follow one of ``anchors`` or each other, each
    after at most ``MAX_SEPARATOR`` separators."""
    found: list[Token] = []
    seen: set[int] | None = None  # starts of tokens; built on the first match (rare)
    match = _LONE_AFTER.match
    for _, end, _, _ in anchors:
        m = match(view, end)
        while m is not None:
            if seen is None:
                seen = {start for start, _, _, _ in anchors}
            start, stop = m.span(1)
            if start in seen:  # a glued lead-in ("o四…") belongs to its token; or seen already
                break
            seen.add(start)
            text = m[1]
            if "x" not in text:
                found.append((start, stop, text.translate(_TO_DIGIT), "h"))
            elif "x" not in text[:-1]:  # an ID's check character, alone or after "1" ("lX")
                found.append((start, stop, text[:-1].translate(_TO_DIGIT) + "x", "x"))
            else:
                break  # an x inside: not a digit token, so nothing after it joins the run
            m = match(view, stop)
    return found


_SCRIPT_CHANGES = frozenset({"dn", "nd"})
"""Kinds of two adjacent tokens (the new one's first) that start a new group."""


def find_number_runs(
    view: str, reversed_too: bool = False, words_too: bool = True
) -> tuple[NumberRun, ...]:
    """All digit runs of the view with at least ``MIN_RUN_DIGITS`` digits.

    One regex pass finds the tokens; consecutive tokens with nothing between them form one
    group, tokens with a short separator run between them stay in one run.
    ``reversed_too`` adds each run read backwards (a bidi override was present);
    ``words_too=False`` skips the digit words (the caller knows the view holds none).
    """
    runs: list[NumberRun] = []
    separator = _SEPARATOR.fullmatch
    blank = _BLANK.fullmatch
    soft = _SOFT.fullmatch
    groups: list[tuple[int, int, str]] = []
    hard: list[int] = []
    weak = lone_x = 0  # bit k: group k is homoglyphs alone / a lone "x"
    count = 0  # digits of the run so far, weak groups included
    plus = False
    last_end = last_start = -1
    last_kind = ""
    for start, end, digits, kind in _tokens(view, words_too):
        if start < last_end or start == last_start:
            continue  # overlapping token (a word inside a digit chunk cannot happen; belt)
        last_start = start
        if groups and start == last_end and kind + last_kind not in _SCRIPT_CHANGES:
            s0, _, d0 = groups[-1]
            groups[-1] = (s0, end, d0 + digits)
            top = 1 << (len(groups) - 1)
            if kind != "h":
                weak &= ~top
            if kind != "x":
                lone_x &= ~top
        elif groups and (
            start == last_end  # digits meet numerals: a hard group boundary
            or (start - last_end <= MAX_SEPARATOR and separator(view, last_end, start))
            or blank(view, last_end, start)
        ):
            if start == last_end or soft(view, last_end, start) is None:
                hard.append(len(groups))
            if kind == "h":
                weak |= 1 << len(groups)
            elif kind == "x":
                lone_x |= 1 << len(groups)
            groups.append((start, end, digits))
        else:
            if count >= MIN_RUN_DIGITS:
                _flush(runs, groups, hard, weak, lone_x, plus, reversed_too, count)
            groups = [(start, end, digits)]
            hard = []
            weak = 1 if kind == "h" else 0
            lone_x = 1 if kind == "x" else 0
            count = 0
            plus = start > 0 and view[start - 1] == "+"
        count += len(digits)
        last_end = end
        last_kind = kind
    if count >= MIN_RUN_DIGITS:
        _flush(runs, groups, hard, weak, lone_x, plus, reversed_too, count)
    return tuple(runs)


def _flush(
    runs: list[NumberRun],
    groups: list[tuple[int, int, str]],
    hard: list[int],
    weak: int,
    lone_x: int,
    plus: bool,
    reversed_too: bool,
    count: int,
) -> None:
    """Add the run of ``groups`` (``count`` digits) to ``runs`` if it holds enough digits
    once the groups of homoglyphs alone ("I", "oil") or a lone "x" at its ends are dropped:
    they only count between digits (a trailing "x" is an ID's check character, so it
    stays)."""
    lo, hi = 0, len(groups)
    if weak | lone_x:
        while lo < hi and (weak | lone_x) >> lo & 1:
            lo += 1
        while hi > lo and weak >> (hi - 1) & 1:
            hi -= 1
        kept = tuple(groups[lo:hi])
        count = sum(len(g[2]) for g in kept)
    else:
        kept = tuple(groups)
    if kept and count >= MIN_RUN_DIGITS:
        cuts = tuple(k - lo for k in hard if lo < k < hi) if hard else ()
        run = number_run(kept[0][0], kept[-1][1], plus and lo == 0, kept, cuts)
        runs.append(run)
        if reversed_too:
            runs.append(run.reversed())


def claim(windows: Iterable[Window], accept: Callable[[Window], bool]) -> Iterator[Window]:
    """Accepted windows that do not overlap an earlier accepted one (left to right)."""
    taken_until = -1
    for w in windows:
        if w.start >= taken_until and accept(w):
            taken_until = w.end
            yield w
