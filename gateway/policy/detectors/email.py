"""E-mail addresses, including the ``name(at)example.com`` / ``name [at] example [dot] com``
dodges. Every piece is possessive except the repetition of whole domain labels, which gives
back at most one label per step (labels cannot contain dots), so matching stays linear.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .base import Hit, ScanContext

_AT = r"(?:@|\s?+[\(\[\{]\s?+at\s?+[\)\]\}]\s?+)"
_DOT = r"(?:\.|\s?+[\(\[\{]\s?+dot\s?+[\)\]\}]\s?+)"
_EMAIL = re.compile(
    rf"(?<![a-z0-9._%+\-/])[a-z0-9][a-z0-9._%+\-]{{0,63}}+{_AT}"
    rf"(?:[a-z0-9](?:[a-z0-9\-]{{0,62}}+){_DOT})+[a-z]{{2,24}}+(?![a-z0-9\-])"
)


class EmailDetector:
    """E-mail addresses."""

    kinds = ("email",)
    triggers = ("@", "at)", "at]", "at}", "at )", "at ]", "at }")
    gate_phrases = triggers
    exclusive = True

    def scan(self, ctx: ScanContext) -> Iterator[Hit]:
        """Yield e-mail addresses."""
        for m in _EMAIL.finditer(ctx.view):
            yield Hit("email", m.start(), m.end(), "email.address")
