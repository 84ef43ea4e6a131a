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
example.com") is left alone: "look at example.com" points at a web site."""


class EmailDetector:
    """E-mail addresses."""

    kinds = ("email",)
    triggers = ("@", "at)", "at]", "at}", "at )", "at ]", "at }", "dot", "点")
    gate_phrases = triggers
    exclusive = True

    def scan(self, ctx: ScanContext) -> Iterator[Hit]:
        """Yield e-mail addresses, in text order."""
        view = ctx.view
        hits = [m.span() for m in _EMAIL.finditer(view)]
        if "dot" in view or "点" in view:
            hits.extend(m.span() for m in _SPELT_EMAIL.finditer(view))
            hits.sort()
        for start, end in hits:
            yield Hit("email", start, end, "email.address")
