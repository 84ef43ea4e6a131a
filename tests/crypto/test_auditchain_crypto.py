"""crypto.auditchain: key derivation binds the chain, MACs bind content and order,
checkpoint signatures are domain-separated from hello signatures."""

from __future__ import annotations

import pytest

from crypto import auditchain as ac
from crypto.identity import GatewayIdentity, verify_hello

ROOT = bytes(range(32))


def _row(**over: object) -> bytes:
    fields: dict = dict(
        chain="t1",
        seq=1,
        key_id="k",
        ts=1.5,
        action="a",
        tenant_id="t1",
        actor="x",
        target=None,
        ip=None,
        details={"b": 1, "a": [1, "二"]},
    )
    fields.update(over)
    return ac.canonical_row(**fields)


def test_chain_keys_differ_per_chain_and_root() -> None:
    assert ac.derive_chain_key(ROOT, "t1") != ac.derive_chain_key(ROOT, "t2")
    assert ac.derive_chain_key(ROOT, "t1") != ac.derive_chain_key(bytes(32), "t1")
    assert ac.derive_chain_key(ROOT, "t1") == ac.derive_chain_key(ROOT, "t1")
    with pytest.raises(ValueError):
        ac.derive_chain_key(b"short", "t1")


def test_canonical_form_is_key_order_independent_and_covers_every_field() -> None:
    assert _row(details={"a": [1, "二"], "b": 1}) == _row()
    base = _row()
    for change in (
        {"seq": 2},
        {"ts": 1.5000001},
        {"actor": "y"},
        {"ip": "1.2.3.4"},
        {"chain": "t2"},
        {"key_id": "k2"},
        {"details": {"b": 2, "a": [1, "二"]}},
    ):
        assert _row(**change) != base, change


def test_mac_binds_previous_mac() -> None:
    key = ac.derive_chain_key(ROOT, "t1")
    first = ac.row_mac(key, ac.GENESIS_MAC, _row())
    assert ac.verify_row(key, ac.GENESIS_MAC, _row(), first)
    assert not ac.verify_row(key, bytes([1]) * 32, _row(), first)
    assert not ac.verify_row(key, ac.GENESIS_MAC, _row(actor="y"), first)
    assert not ac.verify_row(key, ac.GENESIS_MAC, _row(), first[:-1])


def test_checkpoint_signature_is_not_a_hello_signature() -> None:
    ident = GatewayIdentity.generate()
    mac = bytes(32)
    sig = ident.sign_checkpoint("t|1", 7, mac, 2.0)
    transcript = ac.checkpoint_transcript("t|1", 7, mac, 2.0)
    assert ac.verify_checkpoint(ident.verify_key_bytes, transcript, sig)
    assert not ac.verify_checkpoint(
        ident.verify_key_bytes, ac.checkpoint_transcript("t|1", 8, mac, 2.0), sig
    )
    assert not ac.verify_checkpoint(GatewayIdentity.generate().verify_key_bytes, transcript, sig)
    hello_sig = ident.sign_hello("sid", ident.verify_key_b64)
    import base64

    assert not ac.verify_checkpoint(ident.verify_key_bytes, transcript, base64.b64decode(hello_sig))
    assert not verify_hello(
        ident.verify_key_b64, "sid", ident.verify_key_b64, base64.b64encode(sig).decode()
    )
