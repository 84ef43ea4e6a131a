"""Payment card numbers: Luhn-valid AND a plausible issuer prefix and length; and card
security codes (CVV/CVC) and expiry dates named as such.

Luhn alone passes one random number in ten (order numbers, tracking numbers); requiring a
real issuer range with its lengths keeps precision high without losing real cards. A
security code is three or four digits anyone could write, so only one named by its cue
("CVV 123", "安全码：123") is one; card rules (PCI DSS) forbid keeping it after an
authorisation, so it is card data and takes the card's actions, hidden completely.
"""

from __future__ import annotations

from collections.abc import Iterator

from .base import Hit, ScanContext, ValidatedNumberDetector, mentions
from .context import ContextRuleDetector, context_rule

CVV_RULE = "card.cvv"
"""The rule of a card security code finding (masked whole: its "last 4" is all of it)."""
CVV_CONTEXT_RULE = context_rule(
    "card",
    CVV_RULE,
    ("cvv", "cvv2", "cvc", "cvc2", "cvn", "cvn2", "security code", "安全码", "卡背"),
    r"[^0-9a-z\n]{0,12}+(?:(?:is|was)[^0-9a-z\n]{0,4}+)?+",
    r"(?<![0-9])[0-9]{3,4}+(?![0-9])",
)

EXPIRY_RULE = "card.expiry"
"""The rule of a card expiry date finding (masked whole, like a security code)."""
EXPIRY_CONTEXT_RULE = context_rule(
    "card",
    EXPIRY_RULE,
    (
        "exp ",
        "exp.",
        "exp:",
        "exp date",
        "expiry",
        "expiry date",
        "expires",
        "expiration",
        "expiration date",
        "valid thru",
        "valid through",
        "good thru",
        "有效期",
        "有效日期",
        "到期日",
        "到期",
    ),
    r"[^0-9a-z\n]{0,12}+(?:(?:is|date|至|到)[^0-9a-z\n]{0,4}+)?+",
    r"(?<![0-9])(?:0?[1-9]|1[0-2])\s?+[/\-]\s?+(?:20)?+[0-9]{2}(?![0-9/\-])",
)
CARD_WORDS = ("卡", "card", "visa", "master", "amex", "unionpay", "银联", "cvv", "cvc")
"""Words that make a message about a payment card."""
HIDDEN_CARD_RULES = frozenset({CVV_RULE, EXPIRY_RULE})
"""Card findings masked whole whatever the kind's style: any "last N" of them is all of them."""


class CardExpiryDetector(ContextRuleDetector):
    """A card's expiry date after its cue ("有效期 12/26", "exp 09/2027"), in a message about
    a card (a word for one, or a number as long as a card's): with the number and the
    security code it completes what a payment needs, so PCI DSS counts it as card data.
    Elsewhere "有效期 12/26" is a coupon's or a membership's, left alone."""

    def __init__(self) -> None:
        super().__init__(EXPIRY_CONTEXT_RULE)

    def scan(self, ctx: ScanContext) -> Iterator[Hit]:
        """Yield the expiry dates of a message about a card."""
        view = ctx.view
        if mentions(view, CARD_WORDS) or any(run.digit_count >= 13 for run in ctx.number_runs):
            yield from super().scan(ctx)


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


_ALLOWED: frozenset[tuple[str, int]] = frozenset(
    (f"{p}{rest:0{4 - len(str(p))}d}" if len(str(p)) < 4 else str(p), n)
    for lo, hi, lengths in _ISSUERS
    for p in range(lo, hi + 1)
    for rest in range(10 ** (4 - len(str(p))))
    for n in lengths
)
"""(first four digits, length) of every issuer range, expanded: one set lookup per window
instead of a loop over the issuers (about 20k entries)."""


_DOUBLED = str.maketrans("0123456789", "0246813579")
"""Each digit's Luhn doubling, digit sums included (2*7 = 14 -> 5)."""


def luhn_valid(digits: str) -> bool:
    """The Luhn check (same result as ``stdnum.luhn.is_valid``, a test compares them),
    written out with ``str.translate`` and a byte sum because it runs for every
    card-shaped window of a message: several times faster than stdnum's generic-alphabet
    version. ``digits`` are ASCII digits (the caller checked)."""
    odd = digits[-1::-2].encode("ascii")
    doubled = digits[-2::-2].translate(_DOUBLED).encode("ascii")
    # sum() over bytes runs in C; each ASCII digit is its value + 48
    return (sum(odd) + sum(doubled) - 48 * (len(odd) + len(doubled))) % 10 == 0


def is_card_number(digits: str) -> bool:
    """True for a Luhn-valid number in a real issuer range with a length that issuer uses."""
    if not (digits.isascii() and digits.isdigit()) or not 13 <= len(digits) <= 19:
        return False
    return (digits[:4], len(digits)) in _ALLOWED and luhn_valid(digits)


class CardDetector(ValidatedNumberDetector):
    """Card numbers, including spaced, dashed, dotted and full-width forms: Luhn-valid in a
    real issuer range with a length that issuer uses."""

    kinds = ("card",)
    rule = "card.luhn"
    min_digits, max_digits, leading = 13, 19, "23456"
    valid = staticmethod(is_card_number)
