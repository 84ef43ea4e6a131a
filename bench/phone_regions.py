"""What validating phone numbers of many regions costs, with libphonenumber's patterns
compiled once (``prepare_phonenumbers``) against how they were compiled before, in the same
run.

    .venv/bin/python bench/phone_regions.py [--rounds 5]

Why: phonenumbers loads a region's metadata when it first sees one of its numbers and
compiles the patterns with plain ``re.compile``, which relies on the ``re`` module's cache of
512 entries. The first number of each region held its message up, and once numbers of many
regions had been seen the cache thrashed and every validation compiled again.

The numbers: libphonenumber's example mobile and landline of every region, written with
``+`` as a customer would, checked through ``PhoneDetector`` as a message's run is.
Printed, for "before" (each in a fresh process, pattern cache off) and "now":
* the first number of a region in a fresh process (the stall of the first message that
  holds one; median over a few regions);
* the median per-number cost of a round over all regions' numbers, after the first round.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.gateway.policy.phone_examples import example_numbers  # noqa: E402

FIRST_REGIONS = ("GB", "DE", "FR", "JP", "BR", "IN", "AU", "RU")

_FIRST = """
import sys, time
sys.path.insert(0, {root!r})
from gateway.policy.detectors import phone
start = time.perf_counter()
if {prepared}:
    phone.prepare_phonenumbers()
else:
    phone.prepare_phonenumbers = lambda: 0  # the code before: nothing prepared
prepare = time.perf_counter() - start
detector = phone.PhoneDetector(("CN",))
start = time.perf_counter()
assert detector._accept_digits({digits!r}, True)
print((time.perf_counter() - start) * 1e6, prepare * 1e3)
"""


def first_number_us(digits: str, prepared: bool) -> tuple[float, float]:
    """(microseconds the first number of a region takes in a fresh process, milliseconds
    ``prepare_phonenumbers`` took there)."""
    code = _FIRST.format(root=str(ROOT), prepared=prepared, digits=digits)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    first, prepare = out.stdout.split()
    return float(first), float(prepare)


def round_us(numbers: list[str], rounds: int, prepared: bool) -> float:
    """Median per-number microseconds of a round over ``numbers`` (after a first round)."""
    from phonenumbers import re_util

    from gateway.policy.detectors import phone

    detector = phone.PhoneDetector(("CN",))  # prepares: undone below for "before"
    if not prepared:
        re_util._COMPILED_PATTERNS = None  # the library's default: re's own cache only
    try:
        for digits in numbers:
            detector._accept_digits(digits, True)
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            for digits in numbers:
                detector._accept_digits(digits, True)
            times.append((time.perf_counter() - start) / len(numbers) * 1e6)
        return statistics.median(times)
    finally:
        re_util.enable_pattern_cache()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    import phonenumbers

    numbers = example_numbers()
    print(f"{len(numbers)} numbers of {len(phonenumbers.SUPPORTED_REGIONS)} regions")
    start = time.perf_counter()
    mobiles = example_numbers(FIRST_REGIONS, (phonenumbers.PhoneNumberType.MOBILE,))
    first = {
        prepared: [first_number_us(digits, prepared) for digits in mobiles]
        for prepared in (False, True)
    }
    print(f"(fresh processes: {time.perf_counter() - start:.1f} s)")
    for prepared, label in ((False, "before"), (True, "now")):
        firsts = [f for f, _ in first[prepared]]
        print(
            f"{label:6s}  first number of a region {statistics.median(firsts):8.0f} us"
            f" (max {max(firsts):.0f});  every region, per number"
            f" {round_us(numbers, args.rounds, prepared):6.1f} us"
        )
    prepare = statistics.median(p for _, p in first[True])
    print(f"prepare_phonenumbers, once per process: {prepare:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
