"""Identity documents other than the resident ID card: passports, travel and residence
permits, service IDs, driving licences, social-security and insurance numbers, the identity
cards of Hong Kong, Singapore and Malaysia -- named by their cue; a US social-security number
written as one (``123-45-6789``) and a Hong Kong identity card number with its bracketed check
digit need none.

A Chinese passport is ``E12345678`` or ``EA1234567``, a Hong Kong/Macau travel permit
``C12345678``, a Taiwan compatriot permit eight digits, a foreign passport six to nine
characters: none carries a check digit anyone publishes, and each looks like an order or
tracking number. So, as for account numbers, the cue is the validation ("护照号：E12345678",
"passport no. 123456789"). The filler between cue and value is only punctuation and the words
that announce a number (号码, 是, number, no, is), never free text: "护照还没办好，订单
12345678" is no passport number. PIPL counts these numbers as sensitive personal information
like the resident ID, so they take the ID's actions (kind ``id_document``). A value is up to
two letters and 5 to 18 digits: a Chinese driving licence's number is its holder's ID number.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from stdnum.us import ssn

from .base import Hit, ScanContext
from .context import ANNOUNCING_FILLER, context_rule

ID_DOCUMENT_PHRASES = (
    "护照",
    "通行证",
    "台胞证",
    "回乡证",
    "居留证",
    "居留许可",
    "军官证",
    "士兵证",
    "警官证",
    "证件号",
    "签证号",
    "社保号",
    "社保卡号",
    "社会保障号",
    "passport",
    "travel permit",
    "travel document",
    "residence permit",
    "document number",
    "document no",
    "visa number",
    "visa no",
    "social security number",
    "social security",
    "ssn",
    "social insurance number",
    "national insurance number",
    "ni number",
    "驾驶证",
    "驾驶证号",
    "驾照",
    "driver's license",
    "drivers license",
    "driver license",
    "driving licence",
    "driving license",
    "licence number",
    "license number",
    "hkid",
    "hk id",
    "香港身份证",
    "澳门身份证",
    "nric",
    "ic number",
    "ic no",
    "mykad",
)

RULE = context_rule(
    "id_document",
    "id_document.context",
    ID_DOCUMENT_PHRASES,
    ANNOUNCING_FILLER,
    r"(?<![0-9a-z])(?:[a-z]{1,2}+[ \-]?+)?+[0-9](?:[ \-]?+[0-9]){4,17}+[a-z]?+(?![0-9a-z])",
)


_HKID = re.compile(r"[a-z](?<![0-9a-z].)[a-z]?[0-9]{6}\([0-9a]\)")
"""A Hong Kong identity card number as printed, check digit in brackets (``A123456(3)``): one
or two letters, six digits, the check character; nothing alphanumeric before it (the
look-behind follows the first letter so the pattern starts with a character class)."""


def is_hkid(value: str) -> bool:
    """The HKID check (weights 9..2 over the letters, A=10 … Z=35, a single letter padded
    with 36, and the six digits; the check character makes the sum 0 mod 11, A for 10).
    Hand-written: python-stdnum has no Hong Kong module."""
    letters, digits, check = value[:-9], value[-9:-3], value[-2]
    if len(letters) == 1:
        letters = " " + letters
    values = [36 if c == " " else ord(c) - ord("a") + 10 for c in letters]
    values += [int(d) for d in digits]
    total = sum(v * w for v, w in zip(values, range(9, 1, -1), strict=True))
    expected = (11 - total % 11) % 11
    return check == ("a" if expected == 10 else str(expected))


class HkidDetector:
    """Hong Kong identity card numbers written with their bracketed check digit (kind
    ``id_document``, rule ``id_document.hkid``): checksum-valid, found without a cue."""

    kinds = ("id_document",)
    triggers = ()
    gate_phrases = tuple(c + ")" for c in "0123456789a")
    """In every match: the check character and its closing bracket (the view folds ） to ))."""
    exclusive = True

    def scan(self, ctx: ScanContext) -> Iterator[Hit]:
        """Yield the valid numbers."""
        for m in _HKID.finditer(ctx.view):
            if is_hkid(m.group()):
                yield Hit("id_document", m.start(), m.end(), "id_document.hkid")


_SSN_TAIL = re.compile(r"-[0-9]{2}-[0-9]{4}(?![0-9\-])")
"""The last six digits of a US social-security number as written, ``-45-6789``: searched
for from the dash (a pattern led by a digit stops at every digit of a message); ``scan``
checks the three digits before it, with no digit or dash before them. No date, phone or
order number is written 3-2-4."""


class SsnDetector:
    """US social-security numbers written ``123-45-6789`` (kind ``id_document``, rule
    ``id_document.ssn``), found without a cue: python-stdnum's ``us.ssn`` refuses the areas,
    groups and serials never issued (000, 666, 9xx, 00, 0000) and the published examples."""

    kinds = ("id_document",)
    triggers = ()
    gate_phrases = tuple(f"{d}-" for d in "0123456789")
    """A digit and a dash: in every match (and in dates, which the pattern then refuses)."""
    exclusive = True

    def scan(self, ctx: ScanContext) -> Iterator[Hit]:
        """Yield the valid numbers."""
        view = ctx.view
        for m in _SSN_TAIL.finditer(view):
            start = m.start() - 3
            area = view[start : m.start()] if start >= 0 else ""
            if not (area.isascii() and area.isdigit()):
                continue
            if start and (view[start - 1].isdigit() or view[start - 1] == "-"):
                continue
            if ssn.is_valid(view[start : m.end()]):
                yield Hit("id_document", start, m.end(), "id_document.ssn")
