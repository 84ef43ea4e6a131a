"""Widget identity tokens: HS256 only, expiry, rotation, and robust parsing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auth.clock import ManualClock
from auth.identity import (
    ERROR_CODES,
    IdentityError,
    IdentityVerifier,
    VerifiedIdentity,
    sign_identity,
)

NOW = 1_700_000_000
OLD = "old-secret-" + "o" * 32
NEW = "new-secret-" + "n" * 32


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(
    header: dict[str, Any],
    claims: dict[str, Any],
    secret: str | None = NEW,
    digest: Any = hashlib.sha256,
) -> str:
    """Build a token by hand, with any header and algorithm."""
    h = b64(json.dumps(header).encode())
    p = b64(json.dumps(claims).encode())
    sig = b"" if secret is None else hmac.new(secret.encode(), f"{h}.{p}".encode(), digest).digest()
    return f"{h}.{p}.{b64(sig)}"


def claims(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"sub": "cust-42", "exp": NOW + 600, "nonce": "n-1"}
    base.update(extra)
    return base


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def verifier(clock: ManualClock) -> IdentityVerifier:
    return IdentityVerifier([NEW, OLD], clock=clock)


def code_of(verifier: IdentityVerifier, token: Any) -> str:
    with pytest.raises(IdentityError) as info:
        verifier.verify(token)
    assert info.value.code in ERROR_CODES
    return info.value.code


def test_valid_token(verifier: IdentityVerifier) -> None:
    token = sign_identity(NEW, claims(name="Ann Lee", email="ann@example.com", iat=NOW))
    assert verifier.verify(token) == VerifiedIdentity(
        user_id="cust-42",
        name="Ann Lee",
        email="ann@example.com",
        nonce="n-1",
        expires_at=float(NOW + 600),
    )


def test_optional_claims_absent(verifier: IdentityVerifier) -> None:
    identity = verifier.verify(sign_identity(NEW, claims()))
    assert identity.name is None and identity.email is None


def test_expiry_with_leeway_edge(verifier: IdentityVerifier, clock: ManualClock) -> None:
    token = sign_identity(NEW, claims(exp=NOW))
    assert verifier.verify(token).expires_at == NOW
    clock.set(NOW + 30)  # exactly at exp + leeway: still accepted
    assert verifier.verify(token).user_id == "cust-42"
    clock.set(NOW + 30.001)
    assert code_of(verifier, token) == "expired"


def test_forged_signature(verifier: IdentityVerifier) -> None:
    assert code_of(verifier, sign_identity("attacker-" + "a" * 32, claims())) == "bad_signature"
    good = sign_identity(NEW, claims())
    h, p, s = good.split(".")
    tampered_payload = b64(json.dumps(claims(sub="admin")).encode())
    assert code_of(verifier, f"{h}.{tampered_payload}.{s}") == "bad_signature"
    flipped = s[:-2] + ("A" if s[-2] != "A" else "B") + s[-1]
    assert code_of(verifier, f"{h}.{p}.{flipped}") in {"bad_signature", "malformed"}


def test_alg_none_refused(verifier: IdentityVerifier) -> None:
    for alg in ("none", "None", "NONE", ""):
        assert (
            code_of(verifier, forge({"alg": alg, "typ": "JWT"}, claims(), secret=None)) == "bad_alg"
        )
    # Even with a valid HS256 MAC attached, a header saying "none" is refused.
    assert code_of(verifier, forge({"alg": "none"}, claims())) == "bad_alg"


def test_other_algorithms_refused(verifier: IdentityVerifier) -> None:
    assert code_of(verifier, forge({"alg": "HS512"}, claims(), digest=hashlib.sha512)) == "bad_alg"
    assert code_of(verifier, forge({"alg": "RS256"}, claims())) == "bad_alg"
    assert code_of(verifier, forge({"typ": "JWT"}, claims())) == "bad_alg"  # alg missing
    assert code_of(verifier, forge({"alg": ["HS256"]}, claims())) == "bad_alg"


def test_hand_built_hs256_interoperates(verifier: IdentityVerifier) -> None:
    assert verifier.verify(forge({"alg": "HS256"}, claims())).nonce == "n-1"


def test_secret_rotation(clock: ManualClock) -> None:
    old_token = sign_identity(OLD, claims())
    new_token = sign_identity(NEW, claims())
    during = IdentityVerifier([NEW, OLD], clock=clock)
    assert during.verify(old_token).user_id == during.verify(new_token).user_id == "cust-42"
    after = IdentityVerifier([NEW], clock=clock)
    assert after.verify(new_token).user_id == "cust-42"
    assert code_of(after, old_token) == "bad_signature"


def test_lifetime_too_long(verifier: IdentityVerifier) -> None:
    assert verifier.verify(sign_identity(NEW, claims(exp=NOW + 3630))).user_id  # max + leeway
    assert code_of(verifier, sign_identity(NEW, claims(exp=NOW + 3631))) == "lifetime_too_long"
    assert code_of(verifier, sign_identity(NEW, claims(exp=NOW + 10**8))) == "lifetime_too_long"
    # iat → exp span is bounded too.
    long_span = claims(iat=NOW - 3000, exp=NOW + 1000)
    assert code_of(verifier, sign_identity(NEW, long_span)) == "lifetime_too_long"


@pytest.mark.parametrize("missing", ["sub", "exp", "nonce"])
def test_missing_claims(verifier: IdentityVerifier, missing: str) -> None:
    c = claims()
    del c[missing]
    assert code_of(verifier, sign_identity(NEW, c)) == "missing_claim"


@pytest.mark.parametrize(
    "bad",
    [
        {"sub": 42},
        {"sub": ""},
        {"sub": "x" * 300},
        {"nonce": None},
        {"exp": "1700000600"},
        {"exp": 1_700_000_600.5},
        {"exp": True},
        {"exp": -1},
        {"name": ["a"]},
        {"email": 5},
        {"iat": NOW + 3600},  # issued in the future
    ],
)
def test_wrongly_typed_claims_are_malformed(
    verifier: IdentityVerifier, bad: dict[str, Any]
) -> None:
    assert code_of(verifier, sign_identity(NEW, claims(**bad))) == "malformed"


def test_structural_garbage(verifier: IdentityVerifier) -> None:
    good = sign_identity(NEW, claims())
    h, p, s = good.split(".")
    cases: list[Any] = [
        None,
        42,
        b"bytes",
        "",
        ".",
        "..",
        "a.b",
        "a.b.c.d",
        good + ".",
        f"{h}.{p}",
        f"{h}.{p}.{s}=",
        f"{h}=.{p}.{s}",
        f"{h}.{p}.{s}!",
        "é" + good,
        good + " ",
        f"{b64(b'[]')}.{p}.{s}",
        f"{b64(b'not json')}.{p}.{s}",
        f"{b64(bytes([255, 254]))}.{p}.{s}",
        "a" * 5000,
        f"{h}.{p}.{s}" + "A" * 4096,
    ]
    for case in cases:
        assert code_of(verifier, case) in {"malformed", "bad_signature"}


def test_duplicate_keys_and_nan_are_malformed(verifier: IdentityVerifier) -> None:
    h = b64(b'{"alg":"HS256","alg":"none"}')
    assert code_of(verifier, f"{h}.e30.e30") == "malformed"
    header = b64(b'{"alg":"HS256"}')
    payload = b64(b'{"sub":"a","sub":"b","exp":1700000600,"nonce":"n"}')
    sig = b64(hmac.new(NEW.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest())
    assert code_of(verifier, f"{header}.{payload}.{sig}") == "malformed"
    payload = b64(b'{"sub":"a","exp":NaN,"nonce":"n"}')
    sig = b64(hmac.new(NEW.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest())
    assert code_of(verifier, f"{header}.{payload}.{sig}") == "malformed"


def test_deep_nesting_is_malformed_not_recursion_error(verifier: IdentityVerifier) -> None:
    # 1400 levels fit in 4 KB and exceed the interpreter's recursion limit in json.
    header = b64(b"[" * 1400 + b"]" * 1400)
    assert len(header) < 4000
    assert code_of(verifier, f"{header}.e30.e30") == "malformed"


def test_crit_header_refused(verifier: IdentityVerifier) -> None:
    assert code_of(verifier, forge({"alg": "HS256", "crit": ["exp"]}, claims())) == "malformed"


def test_constructor_validation(clock: ManualClock) -> None:
    with pytest.raises(ValueError):
        IdentityVerifier([], clock=clock)
    with pytest.raises(ValueError):
        IdentityVerifier(NEW, clock=clock)  # a bare string is not a list of secrets
    with pytest.raises(ValueError):
        IdentityVerifier(["short"], clock=clock)
    with pytest.raises(ValueError):
        sign_identity("short", claims())


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: b.decode("latin-1"))))
def test_fuzz_only_identity_error(token: str) -> None:
    verifier = IdentityVerifier([NEW], clock=lambda: float(NOW))
    with pytest.raises(IdentityError):
        verifier.verify(token)


@settings(max_examples=200, deadline=None)
@given(
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.", max_size=200
    )
)
def test_fuzz_b64ish_only_identity_error(token: str) -> None:
    verifier = IdentityVerifier([NEW], clock=lambda: float(NOW))
    with pytest.raises(IdentityError):
        verifier.verify(token)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["alg", "typ", "kid", "crit", "x"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.text(max_size=8),
            st.lists(st.integers(), max_size=3),
        ),
        max_size=4,
    ),
    st.dictionaries(
        st.sampled_from(["sub", "exp", "nonce", "name", "email", "iat"]),
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
        max_size=6,
    ),
)
def test_fuzz_signed_structures(header: dict[str, Any], payload: dict[str, Any]) -> None:
    verifier = IdentityVerifier([NEW], clock=lambda: float(NOW))
    token = forge(header, payload)
    try:
        verifier.verify(token)
    except IdentityError as exc:
        assert exc.code in ERROR_CODES
