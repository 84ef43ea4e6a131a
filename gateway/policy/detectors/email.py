"""E-mail addresses, including the ``name(at)example.com`` / ``name [at] example [dot] com``
dodges and addresses spelt out in words (``name at example dot com``, ``name 艾特 163 点 com``).
Every piece is possessive except the repetition of whole domain labels, which gives back at
most one label per step (labels cannot contain dots), so matching stays linear.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..normalize import VIEW_WHITESPACE
from .base import Hit, ScanContext

_LOCAL = r"[a-z0-9](?<![a-z0-9._%+\-/].)[a-z0-9._%+\-]{0,63}+"
"""The local part, no address character before it. The look-behind sits after the first
character so the pattern starts with a character class: the regex engine then skips ahead
in C to the next letter or digit instead of trying every position."""
_LABEL = r"[a-z0-9](?:[a-z0-9\-]{0,62}+)"
_AT = r"(?:@|\s?+[\(\[\{【]\s?+at\s?+[\)\]\}】]\s?+)"
_DOT = r"(?:\.|\s?+[\(\[\{]\s?+dot\s?+[\)\]\}]\s?+)"
ADDRESS = re.compile(rf"{_LOCAL}{_AT}(?:{_LABEL}{_DOT})+[a-z]{{2,24}}+(?![a-z0-9\-])")

SPELT_TLDS = (
    "com net org edu gov mil int info biz name pro mobi asia xyz top site online shop "
    "app dev io ai co me tv cc ws cn hk mo tw jp kr sg my th vn ph id in uk de fr es it nl "
    "be ch at se no dk fi pl cz ru ua tr il ae sa us ca mx br ar au nz za eu"
).split()
"""Top-level domains a spelt-out address may end in. "look at the shop dot now" reads like
an address to a pattern; a known ending keeps prose out (the spelt form is rare, every
common ending is here)."""
_SPELT_AT = r"(?:\s++at\s++|\s*+艾特\s*+|\s*+@\s*+)"
_SPELT_DOT = r"(?:\s++dot\s++|\s*+点\s*+|\s*+\.\s*+)"
_SPELT_LOCAL = rf"{_LOCAL}(?:(?:\s++dot\s++|\s*+点\s*+)[a-z0-9][a-z0-9._%+\-]{{0,63}}+){{0,3}}+"
"""The local part with its dots spelt too ("john dot smith at gmail dot com": without them the
mask started at "smith" and left "john dot" for the plugin to read). Only the words: a plain
dot set apart by spaces would join a sentence's last word to the address."""
_LETTER_SPACED = (
    r"[a-z0-9](?<![a-z0-9._%+\-/].)(?: [a-z0-9._\-]){1,63}+ ?+@ ?+"
    r"(?:[a-z0-9](?: [a-z0-9\-]){0,62}+ \. )+"
    + "(?:"
    + "|".join(" ".join(tld) for tld in SPELT_TLDS)
    + ")"
)
"""An address written letter by letter ("z h a n g s a n @ q q . c o m"): every character
set apart by a space, an @ and a known top-level domain. Spaces only, written as such: the
pattern goes to the browser too, where each ``\\s`` is a class of Python's 29 spaces."""
SPELT_ADDRESS = re.compile(
    rf"(?:{_SPELT_LOCAL}{_SPELT_AT}(?:{_LABEL}{_SPELT_DOT})+(?:{'|'.join(SPELT_TLDS)})"
    rf"|{_LETTER_SPACED})(?![a-z0-9\-])"
)
"""An address with the at and the dots of the domain spelt out -- "at" and "dot" as words, or 艾特
and 点 (the view is Simplified: 點 too) -- or set apart by spaces ("zhangsan @ qq . com"), in any
mix; or written letter by letter (``_LETTER_SPACED``). Only the at spelt ("name at example.com")
is left alone here: "look at example.com" points at a web site."""
_CUED_AT = (
    rf"(?:{_SPELT_AT}|\s*+(?:#|\(a\)|\[a\]|\{{a\}}|【a】|【at】|【@】|\[at\]|\(at\)|\{{at\}})\s*+)"
)
"""After a word for e-mail, the at is also written as Chinese sites ask to, against address
harvesting: ``#`` ("#换成@"), ``(a)``, ``【at】``."""
_MAIL_HOSTS = "qq|163|126|gmail|outlook|hotmail|yahoo|sina|sohu|foxmail|139|aliyun|yeah|icloud"
"""Mail providers named without their top-level domain ("邮箱 zhangsan@qq")."""
_ADDRESS_AFTER_CUE = (
    rf"(?P<address>{_SPELT_LOCAL}{_CUED_AT}(?:(?:{_LABEL}(?:\.|{_SPELT_DOT}))+[a-z]{{2,24}}+"
    rf"|(?:{_MAIL_HOSTS})(?![.@]))"
    r")(?![a-z0-9\-])"
)
_AFTER_ZH_CUE = re.compile(rf"(?:地址)?(?:是|为|[:：\s]){{0,4}}+{_ADDRESS_AFTER_CUE}")
AFTER_CUE = {
    "邮箱": _AFTER_ZH_CUE,
    "邮件": _AFTER_ZH_CUE,
    "mail": re.compile(rf"(?:\s?address)?(?:\s?is|\s?[:：])\s{{0,2}}+{_ADDRESS_AFTER_CUE}"),
}
"""(``ADDRESS``, ``SPELT_ADDRESS`` and ``AFTER_CUE`` are public for the end document, which
carries them translated: ``policy/end.py``.)

An address with its at spelt out right after a word for e-mail ("邮箱 zhangsan at
qq.com", "email: jo at example.com", "my email is jo at …"), matched from where the word
ends: the cue says it is no web site. English cues are the noun followed by "is" or a colon
("email me at example.com" is a request, not an address). Found with ``str.find`` first:
a pattern starting with "e-?mail" stops at every "e" of English text."""


def _cued(view: str) -> Iterator[tuple[int, int]]:
    """Spans of the addresses ``AFTER_CUE`` finds after each e-mail word of ``view``."""
    for cue, after in AFTER_CUE.items():
        pos = view.find(cue)
        while pos >= 0:
            m = after.match(view, pos + len(cue))
            if m is not None:
                yield m.span("address")
            pos = view.find(cue, pos + 1)


_CLOSING = ")]}】"
"""The brackets that close a bracketed at ("(at)", "[at]", "{at}", "【at】")."""
_AT_SIGNS = (
    "@",
    *("at" + space + bracket for space in ("", *VIEW_WHITESPACE) for bracket in _CLOSING),
)
"""In every ``ADDRESS`` match: @ (the view folds ＠ to it) or a bracketed at's end, with any
whitespace a view holds ("(at\\n)"): the engine's gate phrases."""
_BRACKETED_AT_END = re.compile(rf"at\s?[{re.escape(_CLOSING)}]")
"""``_AT_SIGNS`` but @, as one search led by a literal (22 substring searches cost ~10 us on
a 500-character line); ``VIEW_WHITESPACE`` is what ``\\s`` matches in a view."""
_SPELT_AT_WORD = re.compile(r"at(?<=\sat)(?=\s)|艾特")
"""In every spelt-out at but @: "at" between whitespace (led by the literal, so the regex
engine skips ahead in C to each "at"), or 艾特."""
_SPACED = re.compile(r"\s[@.]|[@.]\s")
"""An @ or a dot next to whitespace: in every ``SPELT_ADDRESS`` match with an @ but no spelt
dot."""


class EmailDetector:
    """E-mail addresses."""

    kinds = ("email",)
    triggers = ()
    gate_phrases = (*_AT_SIGNS, "dot", "点", *AFTER_CUE)
    """The engine's automaton finds them all in its one pass (as ``triggers`` the engine
    would search for each of the 27 again)."""
    exclusive = True

    def scan(self, ctx: ScanContext) -> Iterator[Hit]:
        """Yield e-mail addresses, in text order. Each pattern runs only where its own
        literal is (~10 us each on a 500-character line), and only near each @ when that
        is the literal every match holds (``_around_each_at``)."""
        view = ctx.view
        hits: list[tuple[int, int]] = []
        at = "@" in view
        bracketed = _BRACKETED_AT_END.search(view) is not None
        if bracketed:
            hits.extend(m.span() for m in ADDRESS.finditer(view))
        elif at:
            hits.extend(m.span() for m in _around_each_at(ADDRESS, view, _LOCAL_CHARS))
        more = False
        spelt_dot = "dot" in view or "点" in view
        if spelt_dot and (at or _SPELT_AT_WORD.search(view) is not None):
            more = True
            hits.extend(m.span() for m in SPELT_ADDRESS.finditer(view))
        elif at and _SPACED.search(view) is not None:
            more = True
            if _SPELT_AT_WORD.search(view) is None:  # and no spelt dot: each match holds @
                spans = _around_each_at(SPELT_ADDRESS, view, _SPELT_LOCAL_CHARS)
                hits.extend(m.span() for m in spans)
            else:
                hits.extend(m.span() for m in SPELT_ADDRESS.finditer(view))
        for span in _cued(view):
            more = True
            hits.append(span)
        if more:
            hits = sorted(set(hits))
        for start, end in hits:
            yield Hit("email", start, end, "email.address")


_LOCAL_CHARS = 64
"""The most characters ``_LOCAL`` matches."""
_SPELT_LOCAL_CHARS = 1 + 2 * 63
"""The most characters a local part of ``SPELT_ADDRESS`` matches when its dots are not spelt
(no "dot" or 点 in the view): ``_LETTER_SPACED``'s, one character and 63 spaced ones."""


def _around_each_at(pattern: re.Pattern[str], view: str, reach: int) -> Iterator[re.Match[str]]:
    """``pattern.finditer(view)`` for a pattern whose every match holds an @ after a local
    part of at most ``reach`` characters without an @, and whitespace only between the two:
    the search for the next match starts that far before the next @, not at every letter
    and digit of the prose before it (10-20 us a 500-character line each pattern).

    Exact: a match starting before the next @ holds that @ (its first), so it starts no
    earlier than ``reach`` characters before the whitespace in front of it; the search
    from there returns the leftmost match, as ``finditer`` does."""
    pos = 0
    at = view.find("@")
    while at >= 0:
        lead = at
        while lead > pos and view[lead - 1].isspace():
            lead -= 1
        m = pattern.search(view, max(pos, lead - reach))
        if m is None:
            return
        yield m
        pos = m.end()
        at = view.find("@", pos)
