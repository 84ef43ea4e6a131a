"""IBANs: country code, check digits, then the country's exact length and mod-97 check.

The regex only finds a start (``de89``); the candidate is then cut to each possible length and
validated with python-stdnum (mod 97 plus the country's BBAN format), so trailing words never
glue onto the number and invalid check digits are never masked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from stdnum import iban

from .base import Hit, ScanContext

_START = re.compile(r"(?<![a-z0-9])[a-z]{2}[0-9]{2}(?:[ \-]?+[a-z0-9]){10,32}+")
_ALNUM = re.compile(r"[a-z0-9]")


class IbanDetector:
    """International bank account numbers."""

    kinds = ("iban",)
    triggers = ()
    exclusive = True

    def scan(self, ctx: ScanContext) -> Iterator[Hit]:
        """Yield mod-97-valid IBANs."""
        if not ctx.number_runs:
            return
        for m in _START.finditer(ctx.view):
            positions = [c.start() + m.start() for c in _ALNUM.finditer(m.group())]
            chars = "".join(ctx.view[p] for p in positions)
            for length in range(min(len(chars), 34), 14, -1):
                if iban.is_valid(chars[:length]):
                    yield Hit("iban", positions[0], positions[length - 1] + 1, "iban.mod97")
                    break
