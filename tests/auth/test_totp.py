"""TOTP: RFC 6238 vectors, the ±1-step window, and single use of each step."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, unquote, urlparse

import pyotp
import pytest

from auth.clock import ManualClock
from auth.totp import TotpVerifier, new_totp_secret, provisioning_uri

RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
T0 = 1_700_000_010.0  # inside step 56_666_667


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def secret() -> str:
    return new_totp_secret()


def test_secret_is_160_bit_base32() -> None:
    s = new_totp_secret()
    assert len(s) == 32
    assert len(base64.b32decode(s)) == 20
    assert s != new_totp_secret()


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
    ],
)
def test_rfc6238_sha1_vectors(at: int, expected: str) -> None:
    assert pyotp.TOTP(RFC_SECRET, digits=8).at(at) == expected
    verifier = TotpVerifier(clock=lambda: float(at), digits=8)
    assert verifier.current_code(RFC_SECRET) == expected
    assert verifier.match_step(RFC_SECRET, expected) == at // 30


def test_window_accepts_one_step_either_side(clock: ManualClock, secret: str) -> None:
    v = TotpVerifier(clock=clock)
    step = int(T0 // 30)
    for offset in (-1, 0, 1):
        code = v.current_code(secret, at=T0 + 30 * offset)
        assert v.match_step(secret, code) == step + offset


def test_window_rejects_two_steps_away(clock: ManualClock, secret: str) -> None:
    v = TotpVerifier(clock=clock)
    for offset in (-2, 2, -3, 3):
        code = v.current_code(secret, at=T0 + 30 * offset)
        # Guard against a chance collision with a code inside the window.
        inside = {v.current_code(secret, at=T0 + 30 * k) for k in (-1, 0, 1)}
        if code in inside:
            continue
        assert v.match_step(secret, code) is None


def test_zero_window_accepts_only_current_step(clock: ManualClock, secret: str) -> None:
    v = TotpVerifier(clock=clock, valid_window=0)
    assert v.match_step(secret, v.current_code(secret)) == int(T0 // 30)
    late = v.current_code(secret, at=T0 - 30)
    if late != v.current_code(secret):
        assert v.match_step(secret, late) is None


def test_replay_of_same_step_is_refused(clock: ManualClock, secret: str) -> None:
    v = TotpVerifier(clock=clock)
    code = v.current_code(secret)
    step = v.verify(secret, code, last_used_step=-1)
    assert step == int(T0 // 30)
    assert v.verify(secret, code, last_used_step=step) is None
    clock.advance(20)  # still within the window, still refused
    assert v.verify(secret, code, last_used_step=step) is None


def test_later_step_is_accepted_older_is_not(clock: ManualClock, secret: str) -> None:
    v = TotpVerifier(clock=clock)
    first = v.verify(secret, v.current_code(secret), last_used_step=-1)
    assert first is not None
    previous_code = v.current_code(secret, at=T0 - 30)
    clock.advance(30)
    second = v.verify(secret, v.current_code(secret), last_used_step=first)
    assert second == first + 1
    # A code from before the accepted one cannot be used afterwards.
    assert v.verify(secret, previous_code, last_used_step=second) is None


@pytest.mark.parametrize(
    "bad", ["", "12345", "1234567", "12a456", "١٢٣٤٥٦", "12345\x00", None, 123456]
)
def test_malformed_codes_are_misses(clock: ManualClock, secret: str, bad: object) -> None:
    assert TotpVerifier(clock=clock).match_step(secret, bad) is None  # type: ignore[arg-type]


def test_spaces_in_code_are_tolerated(clock: ManualClock, secret: str) -> None:
    v = TotpVerifier(clock=clock)
    code = v.current_code(secret)
    assert v.match_step(secret, f" {code[:3]} {code[3:]} ") == int(T0 // 30)


def test_corrupt_secret_raises_value_error(clock: ManualClock) -> None:
    with pytest.raises(ValueError):
        TotpVerifier(clock=clock).match_step("not base32 !!", "123456")


def test_no_negative_steps_near_epoch(secret: str) -> None:
    v = TotpVerifier(clock=lambda: 5.0)
    assert v.match_step(secret, v.current_code(secret)) == 0


def test_provisioning_uri_round_trips(secret: str) -> None:
    uri = provisioning_uri(secret, "alice@example.com")
    parsed = urlparse(uri)
    assert parsed.scheme == "otpauth" and parsed.netloc == "totp"
    assert unquote(parsed.path) == "/cipherdesk:alice@example.com"
    query = parse_qs(parsed.query)
    assert query["secret"] == [secret]
    assert query["issuer"] == ["cipherdesk"]
    # One fixed instant for both (two .now() calls can straddle a 30 s step); and the
    # parsed URI yields the codes our verifier accepts.
    assert pyotp.parse_uri(uri).at(T0) == pyotp.TOTP(secret).at(T0)
    assert pyotp.parse_uri(uri).at(T0) == TotpVerifier(clock=lambda: T0).current_code(secret)
