"""Derived secrets and prepared HMACs: the values are the documented formulas, and a
master-key rotation (``Keyring.adopt``) changes them on the next use."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from crypto.envelope import Keyring, MasterKey
from gateway import derived_keys
from gateway.clientip import rate_limit_key
from gateway.derived_keys import (
    RATE_LIMIT_ADDRESS_LABEL,
    PreparedHmacs,
    address_hasher,
    derived_secret,
)
from gateway.search_index import SEARCH_LABEL, KeyedHasher

RAW = bytes(range(32))


def _hmac(key: bytes, value: str) -> bytes:
    return hmac.digest(key, value.encode(), "sha256")


def test_a_derived_secret_is_hmac_sha256_of_the_label_under_the_current_key() -> None:
    ring = Keyring([MasterKey(RAW), MasterKey.generate()])
    assert derived_secret(ring, "label/v1") == _hmac(RAW, "label/v1")
    assert MasterKey(RAW).derive("other") == _hmac(RAW, "other")
    assert derived_secret(ring, "label/v1") != derived_secret(ring, "other")


def test_address_keys_are_the_keyed_hash_and_follow_a_rotation() -> None:
    ring = Keyring([MasterKey(RAW)])
    key = address_hasher(ring)
    secret = _hmac(RAW, RATE_LIMIT_ADDRESS_LABEL)
    expected = _hmac(secret, rate_limit_key("2001:db8::1")).hex()[:32]
    assert key("2001:db8::1") == expected
    assert key("2001:db8::2") == expected  # the same /64
    assert key("203.0.113.9") != expected

    rotated = ring.with_new_key()
    ring.adopt(rotated)
    secret = rotated.keys[0].derive(RATE_LIMIT_ADDRESS_LABEL)
    assert key("2001:db8::1") == _hmac(secret, rate_limit_key("2001:db8::1")).hex()[:32]
    assert key("2001:db8::1") != expected


def test_address_keys_stay_right_past_the_bound_of_remembered_addresses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(derived_keys, "MAX_REMEMBERED_ADDRESSES", 4)
    ring = Keyring([MasterKey(RAW)])
    key, fresh = address_hasher(ring), address_hasher(ring)
    secret = _hmac(RAW, RATE_LIMIT_ADDRESS_LABEL)
    addresses = [f"203.0.113.{i}" for i in range(10)] * 2
    assert [key(a) for a in addresses] == [
        _hmac(secret, rate_limit_key(a)).hex()[:32] for a in addresses
    ]
    assert [key(a) for a in addresses] == [fresh(a) for a in addresses]


def test_search_tokens_are_keyed_per_tenant_and_follow_a_rotation() -> None:
    ring = Keyring([MasterKey(RAW)])
    hasher = KeyedHasher(ring)
    tenant_key = _hmac(_hmac(RAW, SEARCH_LABEL), "acme")
    assert hasher.tokens("acme", ["parcel", "退款"]) == [
        _hmac(tenant_key, "parcel").hex(),
        _hmac(tenant_key, "退款").hex(),
    ]
    assert hasher.tokens("acme", ["parcel"]) == hasher.tokens("acme", ["parcel"])
    assert hasher.tokens("other", ["parcel"]) != hasher.tokens("acme", ["parcel"])

    before = hasher.tokens("acme", ["parcel"])
    ring.adopt(ring.with_new_key())
    assert hasher.tokens("acme", ["parcel"]) != before


def test_prepared_hmacs_stay_correct_past_their_bound_and_never_share_state() -> None:
    ring = Keyring([MasterKey(RAW)])
    hmacs = PreparedHmacs(ring, "label", max_contexts=3)
    secret = _hmac(RAW, "label")
    for round_ in range(2):
        for n in range(10):
            context = f"t{n}"
            mac = hmacs.new(context)
            mac.update(b"value")
            assert mac.digest() == hmac.digest(_hmac(secret, context), b"value", "sha256"), round_
    # a context-free HMAC is keyed by the secret itself; "" is a context like any other
    plain, empty = hmacs.new(), hmacs.new("")
    plain.update(b"v")
    empty.update(b"v")
    assert plain.digest() == hmac.new(secret, b"v", hashlib.sha256).digest()
    assert empty.digest() == hmac.digest(_hmac(secret, ""), b"v", "sha256")
