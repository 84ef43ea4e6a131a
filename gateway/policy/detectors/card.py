"""Payment card numbers: Luhn-valid AND a plausible issuer prefix and length.

Luhn alone passes one random number in ten (order numbers, tracking numbers); requiring a
real issuer range with its lengths keeps precision high without losing real cards.
"""

from __future__ import annotations

from collections.abc import Iterator

from stdnum import luhn

from .base import Hit, ScanContext
from .numbers import SEVEN_DIGITS, Window, claim

# (lowest prefix, highest prefix, allowed lengths): Visa, Mastercard, Amex, Diners, JCB,
# Discover, UnionPay, Maestro, Mir.
_ISSUERS: tuple[tuple[int, int, frozenset[int]], ...] = (
    (4, 4, frozenset({13, 16, 19})),
    (51, 55, frozenset({16})),
    (2221, 2720, frozenset({16})),
    (34, 34, frozenset({15})),
    (37, 37, frozenset({15})),
    (300, 305, frozenset(range(14, 20))),
    (36, 36, frozenset(range(14, 20))),
    (38, 39, frozenset(range(14, 20))),
    (3528, 3589, frozenset(range(16, 20))),
    (6011, 6011, frozenset(range(16, 20))),
    (644, 649, frozenset(range(16, 20))),
    (65, 65, frozenset(range(16, 20))),
    (62, 62, frozenset(range(16, 20))),
    (50, 50, frozenset(range(16, 20))),  # Maestro: 12-15 digit cards are too rare to
    (56, 58, frozenset(range(16, 20))),  # be worth the false positives on order numbers
    (2200, 2204, frozenset(range(16, 20))),
)


_BY_WIDTH: tuple[tuple[int, frozenset[tuple[str, int]]], ...] = tuple(
    (width, frozenset((str(p), n) for lo, hi, lengths in _ISSUERS if len(str(lo)) == width
                      for p in range(lo, hi + 1) for n in lengths))
    for width in sorted({len(str(lo)) for lo, _, _ in _ISSUERS})
)
"""(prefix width, {(prefix, length)}): every issuer range expanded, for one set lookup per
width instead of a loop over the issuers."""


def is_card_number(digits: str) -> bool:
    """True for a Luhn-valid number in a real issuer range with a length that issuer uses."""
    if not digits.isdigit() or not 13 <= len(digits) <= 19:
        return False
    n = len(digits)
    for width, allowed in _BY_WIDTH:
        if (digits[:width], n) in allowed:
            return luhn.is_valid(digits)
    return False


class CardDetector:
    """Card numbers, including spaced, dashed, dotted and full-width forms."""

    kinds = ("card",)
    triggers = ()
    gate_pattern = SEVEN_DIGITS
    exclusive = True

    def scan(self, ctx: ScanContext) -> Iterator[Hit]:
        """Yield Luhn- and issuer-validated card numbers."""
        for run in ctx.number_runs:
            if run.digit_count < 13:
                continue
            for w in claim(run.windows(13, 19, first="23456"), _accept):
                yield Hit("card", w.start, w.end, "card.luhn")


def _accept(w: Window) -> bool:
    return is_card_number(w.digits)
