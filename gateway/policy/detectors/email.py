"""E-mail addresses, including the ``name(at)example.com`` / ``name [at] example [dot] com``
dodges and addresses spelt out in words (``name at example dot com``, ``name 艾特 163 点 com``).
Every piece is possessive except the repetition of whole domain labels, which gives back at
most one label per step (labels cannot contain dots), so matching stays linear.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .base import Hit, ScanContext

_LOCAL = r"[a-z0-9](?<![a-z0-9._%+\-/].)[a-z0-9._%+\-]{0,63}+"
"""The local part, no address character before it. The look-behind sits after the first
character so the pattern starts with a character class: the regex engine then skips ahead
in C to the next letter or digit instead of trying every position."""
_LABEL = r"[a-z0-9](?:[a-z0-9\-]{0,62}+)"
_AT = r"(?:@|\s?+[\(\[\{]\s?+at\s?+[\)\]\}]\s?+)"
_DOT = r"(?:\.|\s?+[\(\[\{]\s?+dot\s?+[\)\]\}]\s?+)"
_EMAIL = re.compile(rf"{_LOCAL}{_AT}(?:{_LABEL}{_DOT})+[a-z]{{2,24}}+(?![a-z0-9\-])")

SPELT_TLDS = (
    "com net org edu gov mil int info biz name pro mobi asia xyz top site online shop "
    "app dev io ai co me tv cc ws cn hk mo tw jp kr sg my th vn ph id in uk de fr es it nl "
    "be ch at se no dk fi pl cz ru ua tr il ae sa us ca mx br ar au nz za eu"
).split()
"""Top-level domains a spelt-out address may end in. "look at the shop dot now" reads like
an address to a pattern; a known ending keeps prose out (the spelt form is rare, every
common ending is here)."""
_SPELT_AT = r"(?:\s++at\s++|\s*+艾特\s*+)"
_SPELT_DOT = r"(?:\s++dot\s++|\s*+点\s*+)"
_SPELT_EMAIL = re.compile(
    rf"{_LOCAL}{_SPELT_AT}(?:{_LABEL}{_SPELT_DOT})+(?:{'|'.join(SPELT_TLDS)})(?![a-z0-9\-])"
)
"""An address with both the at and every dot of the domain spelt out: "at" and "dot" as
words, or 艾特 and 点 (the view is Simplified: 點 too). Only the at spelt ("name at
example.com") is left alone here: "look at example.com" points at a web site."""
_MAIL_CUES = ("邮箱", "邮件", "mail")
_CUED_EMAIL = re.compile(
    r"(?:(?:邮箱|邮件)(?:地址)?(?:是|为|[:：\s]){0,4}+"
    r"|e-?mail(?:\s?address)?(?:\s?is|\s?[:：])\s{0,2}+)"
    rf"(?P<address>{_LOCAL}{_SPELT_AT}(?:{_LABEL}(?:\.|{_SPELT_DOT}))+[a-z]{{2,24}}+)"
    r"(?![a-z0-9\-])"
)
"""An address with its at spelt out right after a word for e-mail ("邮箱 zhangsan at
qq.com", "email: jo at example.com", "my email is jo at …"): the cue says it is no web
site. English cues are nouns followed by "is" or a colon ("email me at example.com" is
a request, not an address)."""


class EmailDetector:
    """E-mail addresses."""

    kinds = ("email",)
    triggers = ("@", "at)", "at]", "at}", "at )", "at ]", "at }", "dot", "点", *_MAIL_CUES)
    gate_phrases = triggers
    exclusive = True

    def scan(self, ctx: ScanContext) -> Iterator[Hit]:
        """Yield e-mail addresses, in text order."""
        view = ctx.view
        hits = [m.span() for m in _EMAIL.finditer(view)]
        spelt = "dot" in view or "点" in view
        if spelt:
            hits.extend(m.span() for m in _SPELT_EMAIL.finditer(view))
        cued = any(cue in view for cue in _MAIL_CUES)
        if cued:
            hits.extend(m.span("address") for m in _CUED_EMAIL.finditer(view))
        if spelt or cued:
            hits = sorted(set(hits))
        for start, end in hits:
            yield Hit("email", start, end, "email.address")
