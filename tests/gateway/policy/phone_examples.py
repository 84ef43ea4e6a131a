"""libphonenumber's own example numbers, as a customer writes them after a ``+``: the
numbers of every region that the phone tests and ``bench/phone_regions.py`` validate."""

from __future__ import annotations

from collections.abc import Iterable

import phonenumbers

KINDS = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE)


def example_numbers(
    regions: Iterable[str] | None = None, kinds: Iterable[int] = KINDS
) -> list[str]:
    """The E.164 digits (without ``+``) of each region's example number of each kind, the
    regions in order (all of them by default); a region without an example of a kind has
    none of it."""
    numbers = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS) if regions is None else regions:
        for kind in kinds:
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
                numbers.append(e164[1:])
    return numbers
