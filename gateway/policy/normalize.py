"""Normalisation for matching, with an exact map back to the original text.

People dodge filters with full-width characters (``４１１１``), inserted zero-width or
combining characters, Traditional characters (``銀行卡``) and separators (``p.a.s.s``).
Rules match against a *view* of the text in which all of that is undone, while masks are
applied to the ORIGINAL text, so every view offset must map back exactly.

The view is built per character -- NFKD, drop combining marks, NFKC, case fold, other-script
decimal digits (and digit-valued signs like ❶ ➀ ⓵) to ASCII, format/invisible characters
removed -- through one precomputed table applied with ``str.translate`` (C speed). Almost
every character maps to exactly one character, so the offset map is piecewise identity: only
the few characters that expand or vanish are recorded, and lookups bisect over them.
Traditional -> Simplified then runs only on lines holding Traditional characters, with
OpenCC ``t2s`` (phrase-aware) accepted only when it keeps every position, else a
one-character table derived from the same OpenCC data.

A second, *compact* view drops everything that is not a letter or digit, for keyword matching
across inserted separators.

Before all of that, HTML character references (``&#52;``, ``&#x34;``, ``&amp;``) and
percent-escapes (``%34``, ``%E5%88%B7``) are decoded -- a browser or a helpdesk renders them as
the characters they stand for -- with a second offset map from each decoded character back to
the escape it came from (so a mask covers the whole escape in the original).
"""

from __future__ import annotations

import bisect
import html
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

_TABLE_LIMIT = 0x30000
"""Characters below this are in the translate table; above it they are kept as they are
(astral planes 3-16 hold nothing NFKC, case folding or OpenCC change) except the ones
``_SLOW_EXTRA`` routes through the per-character path."""

# Invisible characters that are not category Cf/Mn but render as nothing.
_INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e")
# Ideographic full stops act as dots in host names (IDNA), so treat them as dots.
_DOTS = {"\u3002": ".", "\uff61": "."}
_KEEP_CONTROLS = frozenset("\t\n\r")
VIEW_WHITESPACE = ("\t", "\n", "\r", " ", "\u1680", "\u2028", "\u2029")
"""Every character of a view that ``\\s`` matches: the rest of Unicode's whitespace folds to a
space or vanishes (a test derives this from the table). Gate phrases spell ``\\s`` with it."""
_JAPANESE_FORMS = dict(
    zip(
        "単証険銭転発売読価気対関済帰鉄仮権図歳楽薬団広変戦労営県駅縁様続総録収査",
        "单证险钱转发卖读价气对关济归铁假权图岁乐药团广变战劳营县驿缘样续总录收查",
        strict=True,
    )
)
"""Japanese forms of characters (shinjitai) that are neither Traditional nor Simplified, so
OpenCC keeps them: a Japanese input method writes 刷単返利 for 刷单返利."""
# Simplified variants OpenCC keeps apart but people use interchangeably (帳戶 -> 帐户 vs 账户),
# and the Japanese forms above.
_VARIANTS = {ord("帐"): "账", **{ord(k): v for k, v in _JAPANESE_FORMS.items()}}
_VARIANT_CHARS = re.compile("[" + "".join(map(chr, _VARIANTS)) + "]")


def _fold_char(ch: str) -> str:
    """The view of one character (see the module docstring); may be empty or several chars."""
    if ch in _DOTS:
        return _DOTS[ch]
    cat = unicodedata.category(ch)
    if cat == "Cs":  # lone surrogate: plain text, never interpreted
        return ch
    if cat in ("Cf", "Mn", "Me") or ch in _INVISIBLE or (cat == "Cc" and ch not in _KEEP_CONTROLS):
        return ""
    decomposed = unicodedata.normalize("NFKD", ch)
    stripped = "".join(c for c in decomposed if unicodedata.category(c) not in ("Mn", "Me"))
    folded = unicodedata.normalize("NFKC", stripped).casefold()
    folded = unicodedata.normalize("NFKC", folded)
    out = []
    for c in folded:
        if c in _INVISIBLE or unicodedata.category(c) in ("Cf", "Mn", "Me"):
            continue
        # decimal digits of every script, and characters that are a digit without being a
        # decimal one and without a compatibility mapping (❶, ➀, ⓵, Ethiopic ፩)
        digit = unicodedata.decimal(c, None)
        if digit is None:
            digit = unicodedata.digit(c, None)
        if digit is not None:
            c = str(digit)
        out.append(c)
    return "".join(out)


def _t2s_map() -> dict[str, str]:
    """Traditional -> Simplified for single characters, from OpenCC's ``t2s`` configuration.

    Converting a newline-separated list keeps OpenCC from applying phrase rules, so every
    entry is a one-character-to-one-character mapping.
    """
    ranges = [(0x3400, 0x4DC0), (0x4E00, 0xA000), (0xF900, 0xFB00), (0x20000, 0x2A6E0)]
    chars = [chr(i) for lo, hi in ranges for i in range(lo, hi)]
    converted = _opencc().convert("\n".join(chars)).split("\n")
    if len(converted) != len(chars):  # pragma: no cover - defensive, OpenCC keeps lines
        return {}
    return {a: b for a, b in zip(chars, converted, strict=True) if a != b and len(b) == 1}


@dataclass(frozen=True)
class _Tables:
    translate: list[int | str | None]
    slow: re.Pattern[str]
    t2s: dict[int, str]
    traditional: re.Pattern[str]
    compact: list[int | None]
    """View character -> itself, or ``None`` when it is not a letter/digit (``[\\W_]``)."""
    unit_codes: npt.NDArray[np.uint32]
    """``translate`` as an array for characters that map to exactly one character (others map
    to themselves here; ``slow`` routes them elsewhere): see ``_unit_views``."""
    alnum: npt.NDArray[np.bool_]
    """Whether each character below ``_TABLE_LIMIT`` is a letter or digit (``compact``)."""


def _char_class(codepoints: list[int]) -> str:
    """A regex character class for ``codepoints`` (sorted), compressed into ranges."""
    parts: list[str] = []
    i = 0
    while i < len(codepoints):
        j = i
        while j + 1 < len(codepoints) and codepoints[j + 1] == codepoints[j] + 1:
            j += 1
        lo, hi = codepoints[i], codepoints[j]
        parts.append(f"\\U{lo:08x}" if lo == hi else f"\\U{lo:08x}-\\U{hi:08x}")
        i = j + 1
    return "[" + "".join(parts) + "]"


@cache
def tables() -> _Tables:
    """Build the translate table once per process (about a quarter of a second)."""
    table: list[int | str | None] = []
    non_unit: list[int] = []
    unit: list[int] = []
    for cp in range(_TABLE_LIMIT):
        ch = chr(cp)
        out = _fold_char(ch)
        unit.append(ord(out) if len(out) == 1 else cp)  # the others never reach the array
        if out == ch:
            table.append(cp)
        else:
            table.append(out or None)
            if len(out) != 1:
                non_unit.append(cp)
    # Astral characters all take the per-character path (cheap: only they are visited). A
    # superset is harmless, and one range keeps the class a BMP bitmap plus one range check:
    # many astral ranges would make the regex test each of them for every character.
    slow = _char_class([cp for cp in non_unit if cp < 0x10000])[:-1] + "\U00010000-\U0010ffff]"
    t2s = {a: _VARIANTS.get(ord(b), b) for a, b in _t2s_map().items()}
    t2s.update({chr(k): v for k, v in _VARIANTS.items()})
    compact = [cp if chr(cp).isalnum() else None for cp in range(_TABLE_LIMIT)]
    return _Tables(
        compact=compact,
        unit_codes=np.array(unit, dtype=np.uint32),
        alnum=np.array([c is not None for c in compact], dtype=np.bool_),
        translate=table,
        slow=re.compile(slow),
        t2s={ord(a): b for a, b in t2s.items()},
        traditional=re.compile(
            _char_class(sorted(ord(c) for c in t2s if ord(c) < 0x10000))[:-1]
            + "\U00020000-\U0002ffff]"
        ),
    )


def fold(text: str) -> str:
    """The matching view of ``text`` (no offsets, no escapes decoded): keyword terms, the
    split window's phrases on every customer message, masks; by ``NormalizedText``'s fast
    paths (the per-character path took ~95 us on a 500-character Chinese line, the array
    one ~12)."""
    return _views(text, tables(), compact=False)[0]


def _views(
    source: str, t: _Tables, compact: bool = True
) -> tuple[str, str | None, tuple[tuple[int, int, int], ...]]:
    """(view, compact view -- ``None`` unless ``compact`` and a fast path gave it --,
    breakpoints) of ``source``, by the cheapest path: printable ASCII -- the view is
    ``str.lower`` (what the table does to those characters); text with no character that
    expands or vanishes -- array lookups (``_unit_views``); otherwise the per-character path
    with breakpoints."""
    if source.isascii() and source.isprintable():
        view = source.lower()
        return view, view.translate(t.compact) if compact else None, ()
    if not source.isascii() and t.slow.search(source) is None:
        view, folded = _unit_views(source, t, compact)
        return view, folded, ()
    view, breaks = _view_of(source, t)
    return view, None, breaks


def _fold_one(ch: str, t: _Tables) -> str:
    cp = ord(ch)
    if cp < _TABLE_LIMIT:
        out = t.translate[cp]
        return "" if out is None else (chr(out) if isinstance(out, int) else out)
    if 0xE0000 <= cp < 0xE1000:
        return ""
    return ch


def _simplified(view: str, t: _Tables) -> str:
    """Traditional -> Simplified without changing length (so offsets stay put).

    OpenCC's phrase rules pick the right character (帳戶 -> 账户, not 帐户); if its output
    ever differs in length, or the text holds lone surrogates it cannot encode, fall back to
    the character table.
    """
    if t.traditional.search(view) is None:
        return view
    try:
        converted: str = _opencc().convert(view)
    except UnicodeError:
        converted = ""
    if len(converted) == len(view):  # t2s phrase rules map phrases to same-length phrases
        # (a dict translate costs a failed lookup per character: only run it when needed)
        return converted.translate(_VARIANTS) if _VARIANT_CHARS.search(converted) else converted
    return view.translate(t.t2s)


@cache
def _opencc() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


def _view_of(text: str, t: _Tables) -> tuple[str, tuple[tuple[int, int, int], ...]]:
    """(view, breakpoints): breakpoints are (view_pos, orig_pos, view_len) per non-1:1 char."""
    view, breaks = _folded(text, t)
    return _simplified(view, t), breaks


_ARRAY_MIN = 96
"""Text length from which ``_unit_views`` uses arrays (both ways cost the same at ~80)."""


def _unit_views(text: str, t: _Tables, compact: bool = True) -> tuple[str, str | None]:
    """(view, compact) of non-ASCII text in which every character maps to exactly one (no
    ``slow`` character: all of it is below U+10000), Traditional characters simplified.

    ``str.translate`` looks every non-ASCII character up through a Python int and a list item
    (~19 ns each); as arrays of UTF-32 code points each view is one NumPy gather: 8 us
    instead of 24 us for both on a 500-character line. The arrays cost ~3 us however short
    the text, so lines shorter than ``_ARRAY_MIN`` keep ``translate``. UTF-32 with
    ``surrogatepass`` keeps lone surrogates one code point each, so lengths never change.
    """
    if len(text) < _ARRAY_MIN:
        view = _simplified(text.translate(t.translate), t)
        return view, view.translate(t.compact) if compact else None
    codes = t.unit_codes[_code_points(text)]
    view = _from_code_points(codes)
    if t.traditional.search(view) is not None:
        view = _simplified(view, t)
        codes = _code_points(view)
        if codes.max() >= _TABLE_LIMIT:  # pragma: no cover - OpenCC maps to CJK planes 0-2
            return view, view.translate(t.compact) if compact else None
    return view, _from_code_points(codes[t.alnum[codes]]) if compact else None


def _code_points(text: str) -> npt.NDArray[np.uint32]:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _from_code_points(codes: npt.NDArray[np.uint32]) -> str:
    return codes.tobytes().decode("utf-32-le", "surrogatepass")


def _folded(text: str, t: _Tables) -> tuple[str, tuple[tuple[int, int, int], ...]]:
    if text.isascii() and t.slow.search(text) is None:
        return text.translate(t.translate), ()
    breaks: list[tuple[int, int, int]] = []
    delta = 0
    for m in t.slow.finditer(text):
        i = m.start()
        out_len = len(_fold_one(text[i], t))
        breaks.append((i + delta, i, out_len))
        delta += out_len - 1
    if not breaks:
        return text.translate(t.translate), ()
    pieces: list[str] = []
    last = 0
    for _, i, _ in breaks:
        pieces.append(text[last:i].translate(t.translate))
        pieces.append(_fold_one(text[i], t))
        last = i + 1
    pieces.append(text[last:].translate(t.translate))
    return "".join(pieces), tuple(breaks)


_SEPARATORS = re.compile(r"[\W_]+")
_ESCAPES = re.compile(
    r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z][a-zA-Z0-9]{1,31});|(?:%[0-9a-fA-F]{2})+"
)


def decode_escapes(text: str) -> tuple[str, list[int] | None]:
    """(decoded, starts): ``starts[i]`` is the original index where decoded char ``i`` begins
    (one extra entry: ``len(text)``); ``None`` when nothing was decoded."""
    if ("&" not in text and "%" not in text) or _ESCAPES.search(text) is None:
        return text, None
    pieces: list[str] = []
    starts: list[int] = []
    last = 0
    for m in _ESCAPES.finditer(text):
        raw = m.group()
        if raw[0] == "&":
            decoded = html.unescape(raw)
        else:
            try:
                decoded = bytes.fromhex(raw.replace("%", "")).decode("utf-8")
            except UnicodeDecodeError:
                decoded = raw
        if decoded == raw or not decoded:
            continue
        pieces.append(text[last : m.start()])
        starts.extend(range(last, m.start()))
        pieces.append(decoded)
        starts.extend([m.start()] * len(decoded))
        last = m.end()
    if not pieces:
        return text, None
    pieces.append(text[last:])
    starts.extend(range(last, len(text)))
    starts.append(len(text))
    return "".join(pieces), starts


BIDI_OVERRIDES = frozenset("\u202a\u202b\u202d\u202e\u2066\u2067\u2068")
"""Characters that can make a browser show digits in another order than they are stored."""
_BIDI = re.compile("[" + "".join(sorted(BIDI_OVERRIDES)) + "]")


def has_bidi_override(text: str) -> bool:
    """Whether ``text`` holds a bidi override: "last 4" could then show the first 4, and a
    reversed run of digits renders as the real number (one regex scan, none for ASCII)."""
    return not text.isascii() and _BIDI.search(text) is not None


class NormalizedText:
    """A message with its matching views and the offset maps back to the original.

    Built once per message; the compact view and its map are computed only if asked for.
    Fast paths (same results, no per-character Python work): printable ASCII -- the view is
    ``str.lower`` (what the table does to those characters) with an identity map; text with no
    character that expands or vanishes -- an identity map, and both views are array lookups
    (``_unit_views``) instead of ``translate`` and a regex substitution.
    """

    __slots__ = (
        "_bidi",
        "_breaks",
        "_compact",
        "_gaps_cache",
        "_pre",
        "_vstarts",
        "original",
        "view",
    )

    def __init__(self, original: str) -> None:
        self.original = original
        self._compact: str | None = None
        self._gaps_cache: tuple[list[int], list[int]] | None = None
        source, self._pre = decode_escapes(original)
        t = tables()
        # Identity map (every view index is its source index) unless a character expands or
        # vanishes; then ``_breaks`` records where.
        self.view, self._compact, self._breaks = _views(source, t)
        self._vstarts = [b[0] for b in self._breaks]
        self._bidi: bool | None = None

    @property
    def bidi_override(self) -> bool:
        """Whether the original holds a bidi override (``has_bidi_override``), looked up once:
        the digit runs, the masks and the decision all ask."""
        if self._bidi is None:
            self._bidi = has_bidi_override(self.original)
        return self._bidi

    @property
    def decoded(self) -> bool:
        """Whether HTML references or percent-escapes were decoded."""
        return self._pre is not None

    def _to_source(self, pos: int) -> int:
        """Index in the decoded source of the character that produced ``view[pos]``."""
        if not self._breaks:
            return pos
        k = bisect.bisect_right(self._vstarts, pos) - 1
        if k < 0:
            return pos
        vpos, opos, vlen = self._breaks[k]
        if pos < vpos + vlen:
            return opos
        return opos + 1 + (pos - vpos - vlen)

    def to_original(self, pos: int) -> int:
        """Original index of the character that produced ``view[pos]``."""
        pos = self._to_source(pos)
        return pos if self._pre is None else self._pre[pos]

    def span_to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map a non-empty view span ``[start, end)`` to the original span covering it."""
        if not self._breaks and self._pre is None:
            return start, end
        first, last = self._to_source(start), self._to_source(end - 1)
        if self._pre is None:
            return first, last + 1
        # The end is where the escape holding the last character ends.
        stop = last + 1
        while stop < len(self._pre) - 1 and self._pre[stop] == self._pre[last]:
            stop += 1
        return self._pre[first], self._pre[stop]

    @property
    def compact(self) -> str:
        """The view with every non-alphanumeric character removed ("p.a.s.s" -> "pass")."""
        if self._compact is None:
            self._compact = _SEPARATORS.sub("", self.view)
        return self._compact

    @property
    def _gaps(self) -> tuple[list[int], list[int]]:
        """Compact positions where separator runs were removed, and total removed so far."""
        if self._gaps_cache is not None:
            return self._gaps_cache
        at: list[int] = []
        removed: list[int] = []
        total = 0
        for m in _SEPARATORS.finditer(self.view):
            total += m.end() - m.start()
            at.append(m.end() - total)  # compact index of the char after the run
            removed.append(total)
        self._gaps_cache = (at, removed)
        return self._gaps_cache

    def compact_to_view(self, pos: int) -> int:
        """View index of ``compact[pos]``."""
        at, removed = self._gaps
        k = bisect.bisect_right(at, pos) - 1
        return pos + (removed[k] if k >= 0 else 0)
