"""Recovery codes: shape, entropy, forgiving input, hashing, single match."""

from __future__ import annotations

import hashlib
import math
import re

import pytest

from auth.recovery import (
    ALPHABET,
    InvalidRecoveryCode,
    generate_recovery_codes,
    hash_recovery_code,
    match_recovery_code,
    normalize_recovery_code,
)

SHAPE = re.compile(r"^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$")


def test_codes_have_shape_and_entropy() -> None:
    codes = generate_recovery_codes()
    assert len(codes) == 10 == len(set(codes))
    assert all(SHAPE.match(c) for c in codes)
    assert len(set(ALPHABET)) == 32
    assert not set("ilou") & set(ALPHABET)
    assert 12 * math.log2(len(ALPHABET)) >= 60


def test_codes_differ_between_calls() -> None:
    assert set(generate_recovery_codes(5)).isdisjoint(generate_recovery_codes(5))


def test_count_validation() -> None:
    assert len(generate_recovery_codes(1)) == 1
    with pytest.raises(ValueError):
        generate_recovery_codes(0)


@pytest.mark.parametrize(
    "typed",
    [
        "ab12-cd34-ef56",
        "AB12CD34EF56",
        " ab12 cd34 ef56 ",
        "ab12-cd34-ef56\n",
        "ＡＢ１２-ＣＤ３４-ＥＦ５６",
    ],
)
def test_normalize_is_forgiving(typed: str) -> None:
    assert normalize_recovery_code(typed) == "ab12-cd34-ef56"


def test_crockford_lookalikes() -> None:
    assert normalize_recovery_code("OoIl-0011-abcd") == "0011-0011-abcd"


@pytest.mark.parametrize(
    "bad", ["", "ab12-cd34", "ab12-cd34-ef56-7", "ab12-cd34-ef5u", "x" * 100, None]
)
def test_normalize_rejects(bad: object) -> None:
    with pytest.raises(InvalidRecoveryCode):
        normalize_recovery_code(bad)  # type: ignore[arg-type]


def test_hash_is_sha256_of_canonical_form() -> None:
    expected = hashlib.sha256(b"ab12-cd34-ef56").hexdigest()
    assert hash_recovery_code("AB12 CD34 EF56") == expected
    assert hash_recovery_code("ab12-cd34-ef57") != expected


def test_match_returns_the_stored_hash() -> None:
    codes = generate_recovery_codes(3)
    stored = [hash_recovery_code(c) for c in codes]
    assert match_recovery_code(codes[1].upper().replace("-", " "), stored) == stored[1]
    assert match_recovery_code("0000-0000-0000", stored) is None
    assert match_recovery_code("not a code", stored) is None
    # Once the caller deletes the used hash, the code no longer works.
    remaining = [h for h in stored if h != stored[1]]
    assert match_recovery_code(codes[1], remaining) is None
