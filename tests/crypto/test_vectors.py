"""Known-answer tests against independently published vectors.

These pin the primitives and byte layouts that the browser side (tweetnacl) must
agree with. Sources: the NaCl paper / libsodium ``test/default/box.c`` (box),
RFC 8032 section 7.1 TEST 1 (Ed25519), draft-irtf-cfrg-xchacha-03 A.3.1
(XChaCha20-Poly1305). The derived channel and hello vectors were cross-checked
against tweetnacl 1.x (``nacl.secretbox``, ``nacl.sign.detached``) when written.
"""

from __future__ import annotations

import nacl.public
import nacl.secret
import nacl.signing
import pytest

from crypto.channel import Channel, EphemeralKey, KeyFormatError, nonce_for
from crypto.encoding import b64encode
from crypto.envelope import open_record
from crypto.identity import GatewayIdentity, verify_hello

# --- NaCl paper: Alice and Bob -------------------------------------------------------

ALICE_SK = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
BOB_PK = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
SHARED = bytes.fromhex("1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389")
PAPER_NONCE = bytes.fromhex("69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37")
PAPER_MESSAGE = bytes.fromhex(
    "be075fc53c81f2d5cf141316ebeb0c7b5228c52a4c62cbd44b66849b64244ffc"
    "e5ecbaaf33bd751a1ac728d45e6c61296cdc3c01233561f41db66cce314adb31"
    "0e3be8250c46f06dceea3a7fa1348057e2f6556ad6b1318a024a838f21af1fde"
    "048977eb48f59ffd4924ca1c60902e52f0a089bc76897040e082f93776384864"
    "5e0705"
)
PAPER_BOX = bytes.fromhex(  # 16-byte Poly1305 tag ‖ 131-byte ciphertext
    "f3ffc7703f9400e52a7dfb4b3d3305d98e993b9f48681273c29650ba32fc76ce"
    "48332ea7164d96a4476fb8c531a1186ac0dfc17c98dce87b4da7f011ec48c972"
    "71d2c20f9b928fe2270d6fb863d51738b48eeee314a7cc8ab932164548e526ae"
    "90224368517acfeabd6bb3732bc0e9da99832b61ca01b6de56244a9e88d5f9b3"
    "7973f622a43d14a6599b1f654cb45a74e355a5"
)
# libsodium box.c: a small-order point that crypto_box_beforenm must refuse.
SMALL_ORDER_POINT = bytes.fromhex(
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"
)


def test_ephemeral_shared_key_matches_nacl_paper() -> None:
    alice = EphemeralKey(nacl.public.PrivateKey(ALICE_SK))
    assert alice.shared_key(b64encode(BOB_PK)) == SHARED


def test_secretbox_layout_matches_nacl_paper() -> None:
    # The channel's ciphertext format is exactly this: tag ‖ ciphertext, no nonce.
    assert len(PAPER_MESSAGE) == 131
    ciphertext = nacl.secret.SecretBox(SHARED).encrypt(PAPER_MESSAGE, PAPER_NONCE).ciphertext
    assert ciphertext == PAPER_BOX


@pytest.mark.parametrize("point", [SMALL_ORDER_POINT, bytes(32), b"\x01" + bytes(31)])
def test_low_order_peer_keys_are_refused(point: bytes) -> None:
    alice = EphemeralKey(nacl.public.PrivateKey(ALICE_SK))
    with pytest.raises(KeyFormatError):
        alice.shared_key(b64encode(point))


# --- the channel's own frames (derived here, cross-checked with tweetnacl) -----------

FIXED_KEY = bytes(range(32))
FIXED_PLAINTEXT = b"cipherdesk"
# tweetnacl: nacl.secretbox(utf8("cipherdesk"), nonce, key) with the v1 nonce layout.
CLIENT_FRAME_1 = bytes.fromhex("0cd3ccdab0e7dd955109233a1274c42482343855b535c3458226")
CLIENT_FRAME_2 = bytes.fromhex("3f3a475294e0204f5837d4fb8dfc7ee98b30ebbdd8c170b57301")
SERVER_FRAME_1 = bytes.fromhex("2e88cffef05d64fbf52d8c53235c6e5358c39ae04eecd6cca3a6")


def test_nonce_layout() -> None:
    assert nonce_for(0x01, 1) == bytes.fromhex("01" + "00" * 15 + "0000000000000001")
    assert nonce_for(0x02, 0x0102030405060708) == bytes.fromhex(
        "02" + "00" * 15 + "0102030405060708"
    )


def test_client_seal_known_answer() -> None:
    client = Channel.client(FIXED_KEY)
    assert client.seal(FIXED_PLAINTEXT) == (1, CLIENT_FRAME_1)
    assert client.seal(FIXED_PLAINTEXT) == (2, CLIENT_FRAME_2)


def test_server_seal_known_answer() -> None:
    assert Channel.server(FIXED_KEY).seal(FIXED_PLAINTEXT) == (1, SERVER_FRAME_1)


def test_known_frames_open_with_raw_secretbox_and_explicit_nonce() -> None:
    box = nacl.secret.SecretBox(FIXED_KEY)
    assert box.decrypt(CLIENT_FRAME_1, bytes.fromhex("01" + "00" * 22 + "01")) == FIXED_PLAINTEXT
    assert box.decrypt(CLIENT_FRAME_2, bytes.fromhex("01" + "00" * 22 + "02")) == FIXED_PLAINTEXT
    assert box.decrypt(SERVER_FRAME_1, bytes.fromhex("02" + "00" * 22 + "01")) == FIXED_PLAINTEXT


def test_server_opens_known_client_frames() -> None:
    server = Channel.server(FIXED_KEY)
    assert server.open(1, CLIENT_FRAME_1) == FIXED_PLAINTEXT
    assert server.open(2, CLIENT_FRAME_2) == FIXED_PLAINTEXT


# --- Ed25519: RFC 8032 section 7.1 TEST 1 --------------------------------------------

RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIG_EMPTY = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555"
    "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)
# tweetnacl: nacl.sign.detached(utf8("cipherdesk/v1/hello|sess-1|" + pk), secretKey).
HELLO_PK_B64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
HELLO_SIG_B64 = (
    "G6xzQWiZtcAQ8XgsB3H2l3HQI0DQgaq4FsTJvVT9nxPAX2o2jlrztio3PDVFRuQioRVw4XHxQ9rw9gbc1v5sCw=="
)


def test_ed25519_rfc8032_test1() -> None:
    signing_key = nacl.signing.SigningKey(RFC8032_SEED)
    assert bytes(signing_key.verify_key) == RFC8032_PUBLIC
    assert signing_key.sign(b"").signature == RFC8032_SIG_EMPTY


def test_identity_from_rfc8032_seed_has_rfc_public_key() -> None:
    identity = GatewayIdentity.from_seed(RFC8032_SEED)
    assert identity.verify_key_bytes == RFC8032_PUBLIC
    assert identity.verify_key_b64 == b64encode(RFC8032_PUBLIC)


def test_hello_signature_known_answer() -> None:
    identity = GatewayIdentity.from_seed(RFC8032_SEED)
    assert identity.sign_hello("sess-1", HELLO_PK_B64) == HELLO_SIG_B64
    assert verify_hello(b64encode(RFC8032_PUBLIC), "sess-1", HELLO_PK_B64, HELLO_SIG_B64)


# --- XChaCha20-Poly1305-IETF: draft-irtf-cfrg-xchacha-03 A.3.1 -----------------------

XC_KEY = bytes.fromhex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
XC_NONCE = bytes.fromhex("404142434445464748494a4b4c4d4e4f5051525354555657")
XC_AAD = bytes.fromhex("50515253c0c1c2c3c4c5c6c7")
XC_PLAINTEXT = (
    b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip "
    b"for the future, sunscreen would be it."
)
XC_CIPHERTEXT_AND_TAG = bytes.fromhex(
    "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb"
    "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452"
    "2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9"
    "21f9664c97637da9768812f615c68b13b52e"
    "c0875924c1c7987947deafd8780acf49"
)


def test_open_record_accepts_xchacha_draft_vector_in_record_format() -> None:
    blob = b"\x01" + XC_NONCE + XC_CIPHERTEXT_AND_TAG
    assert open_record(XC_KEY, blob, XC_AAD) == XC_PLAINTEXT
