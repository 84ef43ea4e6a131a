"""PRC resident identity numbers: 18 characters, ISO 7064 MOD 11-2 check, a real province
code and a real birth date (read as python-stdnum's ``cn.ric`` reads it).

stdnum's full ``validate`` also demands that the county code existed in the birth year, which
rejects real IDs (numbers are issued with the county codes current at issue time), so we check
the province instead. 15-digit legacy numbers (issued until 2004, still in old records) carry
no checksum: one is matched only after its cue ("身份证号：110105491231002") with a real
province and birth date, like a passport number (``id_document.py``).
"""

from __future__ import annotations

import datetime
import operator

from .base import ValidatedNumberDetector
from .context import ANNOUNCING_FILLER, context_rule

_PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 "
    "61 62 63 64 65 71 81 82 83 91".split()
)
_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))


def is_cn_id(value: str) -> bool:
    """True for a checksum-valid 18-character ID with a plausible birth date."""
    if len(value) != 18 or not value[:17].isdigit() or value[:2] not in _PROVINCES:
        return False
    total = sum(map(operator.mul, map(int, value[:17]), _WEIGHTS))
    if "10x98765432"[total % 11] != value[17].lower():
        return False
    return _born_in_time(value)


def _born_in_time(value: str) -> bool:
    """Whether an 18-character ID holds a real birth date from 1900 to today (positions
    7-14, YYYYMMDD: what python-stdnum's ``cn.ric.get_birth_date`` reads, without the
    exception it raises for a date that does not exist -- 3.8 us a call against 0.8)."""
    try:
        born = datetime.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    return 1900 <= born.year and born <= datetime.date.today()


def is_legacy_cn_id(digits: str) -> bool:
    """True for 15 digits with a real province and a real 19YYMMDD birth date (positions
    7-12); the first-generation IDs carry no check digit."""
    if len(digits) != 15 or not digits.isdigit() or digits[:2] not in _PROVINCES:
        return False
    try:
        datetime.date(1900 + int(digits[6:8]), int(digits[8:10]), int(digits[10:12]))
    except ValueError:
        return False
    return True


def is_mistyped_cn_id(value: str) -> bool:
    """True for 18 characters with a real province and a real birth date whatever the check
    character: an ID after its cue with one digit mistyped still gives away the rest."""
    if len(value) != 18 or not value[:17].isdigit() or value[:2] not in _PROVINCES:
        return False
    return value[17] in "0123456789xX" and _born_in_time(value)


_ID_CUES = ("身份证", "居民身份证", "证件号", "id card", "id number", "id no")
LEGACY_RULE = context_rule(
    "cn_id",
    "cn_id.legacy",
    _ID_CUES,
    ANNOUNCING_FILLER,
    r"(?<![0-9])[0-9]{6}+[ \-]?+[0-9]{6}+[ \-]?+[0-9]{3}+(?![0-9a-z])",
    valid=is_legacy_cn_id,
)
MISTYPED_RULE = context_rule(
    "cn_id",
    "cn_id.cued",
    _ID_CUES,
    ANNOUNCING_FILLER,
    r"(?<![0-9])[0-9]{6}+[ \-]?+[0-9]{8}+[ \-]?+[0-9]{3}+[0-9x](?![0-9a-z])",
    valid=is_mistyped_cn_id,
)
"""An 18-character ID after its cue whose check character does not match (a typo): the
valid ones are the detector's own (it runs first), these are reported as ``cn_id`` too."""


class CnIdDetector(ValidatedNumberDetector):
    """Resident ID numbers, with separators or full-width digits (GB 11643 mod 11-2 check
    digit and a real birth date)."""

    kinds = ("cn_id",)
    rule = "cn_id.mod11_2"
    min_digits, max_digits, leading = 18, 18, "123456789"
    valid = staticmethod(is_cn_id)
