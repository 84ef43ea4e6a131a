"""Phone numbers, validated by ``phonenumbers`` (Google's libphonenumber metadata).

Numbers written with ``+`` are parsed as international; others are tried in the tenant's
regions (default ``CN``: mobiles like 138 0013 8000 and landlines like 010-6552 9988). A bare
10-digit run is not tried as a US number by default: too many order numbers look like one.
Only a whole run or one unbroken block of digits is a candidate: parts of a longer spaced
number (an account, an IBAN) too often happen to be valid phone numbers. The exception is a
Chinese mobile written as mobiles are, 3-4-4 (``138 0013 8000``): accounts, cards and IBANs
are grouped in fours, so such a window inside a longer run is a mobile (two mobiles one after
the other, a stray digit or an order number next to one).

After a phone cue ("call me at", "my number in HK is", "香港电话"), a number of another region
is a phone too: ``CUE_RULE`` validates it in the regions customers of Chinese service desks
call from most (``CUE_REGIONS``), whatever the tenant's regions. The cue is what makes a bare
``415-555-2671`` or ``9123 4567`` a phone number rather than an order number.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterator

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberDesc, re_util

from .base import Hit, ScanContext
from .context import ANNOUNCING_WORDS, context_rule
from .numbers import DIGIT_WORDS, SEVEN_DIGITS, NumberRun, Window, claim


class PhoneDetector:
    """Phone numbers valid for their region."""

    kinds = ("phone",)
    triggers = ()
    gate_pattern = SEVEN_DIGITS
    gate_phrases = DIGIT_WORDS
    exclusive = True

    def __init__(self, regions: tuple[str, ...] = ("CN",)) -> None:
        self.regions = tuple(r.upper() for r in regions)
        self._china_only = self.regions == ("CN",)
        prepare_phonenumbers()  # now, not on the first number of each region

    def scan(self, ctx: ScanContext) -> Iterator[Hit]:
        """Yield numbers libphonenumber considers valid."""
        for run in ctx.number_runs:
            if run.digit_count < 7:
                continue
            if len(run.groups) == 1:
                # Most runs: the run itself is the only candidate (a test holds this equal
                # to ``_claimed``, which builds, sorts and claims the candidates).
                if run.digit_count <= 15 and self._accept_digits(run.joined, run.plus):
                    yield Hit("phone", run.start, run.end, "phone.libphonenumber")
                continue
            if self._china_only and not run.plus and not _may_hold_cn_number(run):
                continue  # a date or a price: no candidate can be a Chinese number
            for w in self._claimed(run):
                yield Hit("phone", w.start, w.end, "phone.libphonenumber")

    def _claimed(self, run: NumberRun) -> Iterator[Window]:
        """The valid numbers among a run's candidates: the whole run, each unbroken block,
        the ends of a run too long to be one number and the blocks of each part between
        hard separators; longest first, never overlapping."""
        candidates = itertools.chain(
            run.blocks(7, 15),
            run.ends(7, 15),
            *(seg.blocks(7, 15) for seg in run.segments()),
            _grouped_mobiles(run) if "CN" in self.regions else (),
        )
        return claim(sorted(candidates, key=_longest_first), self._accept)

    def _accept(self, w: Window) -> bool:
        return self._accept_digits(w.digits, w.plus)

    def _accept_digits(self, digits: str, plus: bool) -> bool:
        """Whether ``digits`` (written after a ``+`` when ``plus``) is a valid number."""
        if not digits.isdigit():
            return False
        if plus:
            return valid_international(digits)
        if digits.startswith("00"):
            return valid_international(digits[2:])
        for region in self.regions:
            if region == "CN":
                if valid_cn_shaped(digits):
                    return True
            elif _valid(digits, region):
                return True
        return False


def _may_hold_cn_number(run: NumberRun) -> bool:
    """Whether a candidate of ``run`` (not written after a plus) can be a number
    ``_accept_digits`` takes in China alone: every candidate starts at a group, and every
    such number starts with 0 (a landline, an international prefix), 1 (a mobile) or 8 (a
    mobile after 86) and holds seven digits at least. Dates and prices ("2024-10-17",
    "4,994.49") start none, and skip building, sorting and claiming their candidates."""
    total = run.offsets[-1]
    return any(  # ``offsets`` ends with the total: one entry more than ``groups``
        digits[0] in "018" and total - offset >= 7
        for (_, _, digits), offset in zip(run.groups, run.offsets, strict=False)
    )


def _grouped_mobiles(run: NumberRun) -> Iterator[Window]:
    """Three consecutive groups of 3, 4 and 4 digits, the first starting with 1: a Chinese
    mobile as people write one (``_claimed`` validates it)."""
    groups = run.groups
    for i in range(len(groups) - 2):
        a, b, c = groups[i : i + 3]
        if a[2][0] == "1" and (len(a[2]), len(b[2]), len(c[2])) == (3, 4, 4):
            yield Window(a[2] + b[2] + c[2], min(a[0], c[0]), max(a[1], c[1]), run.plus and i == 0)


def _longest_first(w: Window) -> tuple[int, int]:
    return (w.start, -(w.end - w.start))


_CN_SHAPE = re.compile(r"(?:86)?1[3-9][0-9]{9}|0[1-9][0-9]{8,10}")
"""The shapes of Chinese mobiles and landlines: a cheap check before libphonenumber (which
costs ~50 us a call)."""


_METADATA_PATTERNS = ("leading_digits", "international_prefix", "national_prefix_for_parsing")
"""The regex fields of a region's metadata that parsing and validating compile (besides the
``national_number_pattern`` of each ``PhoneNumberDesc``)."""


@functools.cache
def prepare_phonenumbers() -> int:
    """Load libphonenumber's metadata of every region and compile each pattern validation
    uses, once per process, into a cache that keeps them; returns how many patterns.

    Why: phonenumbers loads a region's metadata when a number of it is first seen and
    compiles its patterns with plain ``re.compile``, which relies on the ``re`` module's
    cache: 512 entries shared with the whole process. The first number of a region then
    held its message up 1-5 ms (more with its metadata still to read from disk), and once
    numbers of many regions had been seen (the metadata holds ~1,300 patterns) that cache
    thrashed and *every* validation compiled again: 200-225 us a number instead of ~20
    (``bench/phone_regions.py``; upstream: daviddrysdale/python-phonenumbers#108, and
    ``re_util.enable_pattern_cache`` is the library's own answer). Costs ~0.13 s and
    ~3 MB once, like the normalisation table."""
    re_util.enable_pattern_cache()
    PhoneMetadata.load_all()
    regions = [PhoneMetadata.metadata_for_region(r) for r in phonenumbers.SUPPORTED_REGIONS]
    regions += [
        PhoneMetadata.metadata_for_nongeo_region(code)
        for code in phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS
    ]
    patterns: set[str] = set()
    for metadata in regions:
        if metadata is None:  # pragma: no cover - every listed region has metadata
            continue
        patterns.update(p for p in (getattr(metadata, f) for f in _METADATA_PATTERNS) if p)
        patterns.update(
            d.national_number_pattern
            for d in vars(metadata).values()
            if isinstance(d, PhoneNumberDesc) and d.national_number_pattern
        )
    for pattern in patterns:
        re_util.re_compile(pattern)
    return len(patterns)


def _valid(number: str, region: str | None) -> bool:
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(parsed)


def valid_international(digits: str) -> bool:
    """``_valid("+" + digits, None)`` for a string of ASCII digits, without
    ``phonenumbers.parse`` (12 of the ~20 us a number written with ``+`` took): for such a
    string parsing takes the country code its first 1-3 digits start with (no code is the
    start of another) and strips the region's national prefix if one leads the rest. The
    number is built here the same way; when a national prefix might be stripped,
    ``parse`` decides. A test compares both on numbers of every country code."""
    if len(digits) <= 2 or digits[0] == "0":  # too short after "+", or no country code
        return False
    for size in (1, 2, 3):
        code = int(digits[:size])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return False
    national = digits[size:]
    if not 2 <= len(national) <= 17:
        return False
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(
        code, phonenumbers.region_code_for_country_code(code)
    )
    prefix = metadata.national_prefix_for_parsing if metadata is not None else None
    if prefix and re_util.re_compile(prefix).match(national) is not None:
        return _valid("+" + digits, None)
    number = phonenumbers.PhoneNumber(country_code=code, national_number=int(national))
    if len(national) > 1 and national[0] == "0":  # as parse keeps "Italian" leading zeros
        number.italian_leading_zero = True
        zeros = 1
        while zeros < len(national) - 1 and national[zeros] == "0":
            zeros += 1
        if zeros != 1:
            number.number_of_leading_zeros = zeros
    return bool(phonenumbers.is_valid_number(number))


def valid_cn_shaped(digits: str) -> bool:
    """Whether ``digits`` has the shape of a Chinese mobile or landline and is valid."""
    return _CN_SHAPE.fullmatch(digits) is not None and valid_cn(digits)


def valid_cn(digits: str) -> bool:
    """``_valid(digits, "CN")`` for digits of ``_CN_SHAPE``, without ``phonenumbers.parse``
    (20 of its ~30 us): for those shapes parsing only drops the trunk prefix ``0`` or the
    country code ``86``, so the number is built directly and libphonenumber's metadata
    still decides. A test compares both on random numbers of every shape."""
    if digits[0] == "0":
        national = digits[1:]
    elif len(digits) == 13:  # 86 + an 11-digit mobile
        national = digits[2:]
    else:
        national = digits
    number = phonenumbers.PhoneNumber(country_code=86, national_number=int(national))
    return bool(phonenumbers.is_valid_number(number))


CUE_REGIONS = ("HK", "MO", "TW", "SG", "MY", "US", "CA", "GB", "AU", "JP", "KR")
"""Regions a number after a phone cue is validated in besides China (whatever the tenant's
regions): Hong Kong, Macau, Taiwan, Singapore, Malaysia, North America, the UK, Australia,
Japan and Korea."""
CUE_VALID_IN = ("CN", *CUE_REGIONS)
"""Every region a number after a phone cue may be valid in (China tried first, by shape)."""
PHONE_CUES = (
    "call me at",
    "call me on",
    "reach me at",
    "reach me on",
    "text me at",
    "text me on",
    "my number",
    "my phone",
    "my cell",
    "my mobile",
    "phone number",
    "phone no",
    "phone",
    "telephone",
    "tel",
    "mobile",
    "cell",
    "contact number",
    "callback number",
    "whatsapp",
    "电话",
    "手机",
    "手机号",
    "联系电话",
    "联系方式",
    "座机",
    "回电",
    "致电",
)
_CUE_FILLER = (
    rf"(?:{ANNOUNCING_WORDS}|at|on|in|hk|us|uk|usa|香港|澳门|台湾|新加坡|马来西亚|美国|加拿大|英国"
    r"|澳洲|澳大利亚|日本|韩国|的){0,8}+"
)
"""The announcing words, and where the number is from ("my number in HK is", "香港电话")."""


def valid_after_cue(value: str) -> bool:
    """Whether ``value`` (digits with separators and brackets) is a valid number of China
    or of one of ``CUE_REGIONS``, 7 to 15 digits. China first, by its shape: most numbers
    after a cue are Chinese, which the tenant's detector has found already, and trying them
    in eleven regions cost ~250 us each."""
    digits = "".join(c for c in value if c.isdigit())
    if not 7 <= len(digits) <= 15:
        return False
    if valid_cn_shaped(digits):
        return True
    return any(_valid(digits, region) for region in CUE_REGIONS)


CUE_RULE = context_rule(
    "phone",
    "phone.cue",
    PHONE_CUES,
    _CUE_FILLER,
    r"(?<![0-9a-z+])\(?+[0-9]{1,5}+\)?+(?:[ \-.]{0,2}+[0-9]{1,5}+){1,5}+(?![0-9])",
    valid=valid_after_cue,
)
"""A phone number of another region after a phone cue (kind ``phone``, rule ``phone.cue``);
it runs after :class:`PhoneDetector`, so a number that detector found stays its hit."""
