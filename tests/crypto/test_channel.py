"""Channel sessions: handshake, ordering, replay window and tamper detection."""

from __future__ import annotations

import nacl.secret
import pytest

from crypto.channel import (
    CLIENT_TO_SERVER,
    MAX_COUNTER,
    SERVER_TO_CLIENT,
    Channel,
    ChannelError,
    DecryptError,
    EphemeralKey,
    KeyFormatError,
    ReplayError,
    nonce_for,
)
from crypto.encoding import b64decode, b64encode

KEY = bytes(range(32))


def _pair() -> tuple[Channel, Channel]:
    """A server and a client channel that completed a real X25519 handshake."""
    server_key, client_key = EphemeralKey.generate(), EphemeralKey.generate()
    server_shared = server_key.shared_key(client_key.public_b64)
    client_shared = client_key.shared_key(server_key.public_b64)
    assert server_shared == client_shared
    return Channel.server(server_shared), Channel.client(client_shared)


# --- handshake ---------------------------------------------------------------------


def test_handshake_keys_agree_and_differ_per_connection() -> None:
    a, b, c = EphemeralKey.generate(), EphemeralKey.generate(), EphemeralKey.generate()
    assert a.shared_key(b.public_b64) == b.shared_key(a.public_b64)
    assert len(a.shared_key(b.public_b64)) == 32
    assert a.shared_key(b.public_b64) != a.shared_key(c.public_b64)


def test_public_b64_encodes_public_bytes() -> None:
    key = EphemeralKey.generate()
    assert len(key.public_bytes) == 32
    assert b64decode(key.public_b64) == key.public_bytes


@pytest.mark.parametrize(
    "peer",
    [
        "",
        "not base64!",
        b64encode(bytes(31) + b"\x09")[:-4],  # truncated
        b64encode(b"\x09" * 33),  # too long
        " " + b64encode(b"\x09" * 32),  # whitespace
        b64encode(b"\x09" * 32).rstrip("="),  # missing padding
    ],
)
def test_malformed_peer_keys_raise_key_format_error(peer: str) -> None:
    with pytest.raises(KeyFormatError):
        EphemeralKey.generate().shared_key(peer)


def test_key_format_error_is_a_channel_error() -> None:
    with pytest.raises(ChannelError):
        EphemeralKey.generate().shared_key(b64encode(bytes(32)))


# --- round trips -------------------------------------------------------------------


def test_round_trip_both_directions_with_counters_from_one() -> None:
    server, client = _pair()
    for expected_counter, text in enumerate([b"hello", b"", "\u00e9t\u00e9".encode()], 1):
        counter, ciphertext = client.seal(text)
        assert counter == expected_counter
        assert server.open(counter, ciphertext) == text
    counter, ciphertext = server.seal(b"ack")
    assert counter == 1  # each direction counts on its own
    assert client.open(counter, ciphertext) == b"ack"
    assert server.last_opened == 3 and client.last_opened == 1


def test_ciphertext_is_secretbox_without_nonce() -> None:
    counter, ciphertext = Channel.server(KEY).seal(b"frame")
    expected = nacl.secret.SecretBox(KEY).encrypt(b"frame", nonce_for(SERVER_TO_CLIENT, counter))
    assert ciphertext == expected.ciphertext
    assert len(ciphertext) == len(b"frame") + 16


def test_b64_wrappers_round_trip() -> None:
    server, client = _pair()
    counter, text = client.seal_b64(b'{"t":"msg"}')
    assert isinstance(text, str)
    assert server.open_b64(counter, text) == b'{"t":"msg"}'


def test_open_b64_rejects_bad_base64_without_moving_window() -> None:
    server, client = _pair()
    counter, text = client.seal_b64(b"x")
    with pytest.raises(DecryptError):
        server.open_b64(counter, text + " ")
    assert server.last_opened == 0
    assert server.open_b64(counter, text) == b"x"


# --- replay window -----------------------------------------------------------------


def test_replay_of_same_counter_is_rejected() -> None:
    server, client = _pair()
    counter, ciphertext = client.seal(b"pay 10")
    assert server.open(counter, ciphertext) == b"pay 10"
    with pytest.raises(ReplayError):
        server.open(counter, ciphertext)


def test_reorder_is_rejected() -> None:
    server, client = _pair()
    frames = [client.seal(b"one"), client.seal(b"two"), client.seal(b"three")]
    assert server.open(*frames[0]) == b"one"
    assert server.open(*frames[2]) == b"three"  # gaps are allowed (skipped frames)...
    with pytest.raises(ReplayError):
        server.open(*frames[1])  # ...but never going back


def test_counter_zero_is_rejected() -> None:
    server = Channel.server(KEY)
    ciphertext = nacl.secret.SecretBox(KEY).encrypt(b"x", nonce_for(CLIENT_TO_SERVER, 0))
    with pytest.raises(ReplayError):
        server.open(0, ciphertext.ciphertext)


@pytest.mark.parametrize("counter", [-1, MAX_COUNTER + 1, 2**80])
def test_out_of_range_counters_are_rejected(counter: int) -> None:
    with pytest.raises(ReplayError):
        Channel.server(KEY).open(counter, bytes(32))


@pytest.mark.parametrize("counter", [True, 1.0, "1", None])
def test_non_integer_counters_are_rejected(counter: object) -> None:
    server, client = _pair()
    _, ciphertext = client.seal(b"x")
    with pytest.raises(ReplayError):
        server.open(counter, ciphertext)  # type: ignore[arg-type]


def test_max_counter_opens_once_then_channel_is_closed() -> None:
    server = Channel.server(KEY)
    box = nacl.secret.SecretBox(KEY)
    last = box.encrypt(b"last", nonce_for(CLIENT_TO_SERVER, MAX_COUNTER)).ciphertext
    assert server.open(MAX_COUNTER, last) == b"last"
    with pytest.raises(ReplayError):
        server.open(MAX_COUNTER, last)


def test_seal_refuses_to_wrap_the_counter() -> None:
    channel = Channel.client(KEY)
    channel._last_sealed = MAX_COUNTER - 1  # jump to the end instead of sealing 2**64 frames
    assert channel.seal(b"x")[0] == MAX_COUNTER
    with pytest.raises(ChannelError):
        channel.seal(b"y")


# --- tampering and forgery ---------------------------------------------------------


def test_every_flipped_bit_position_is_detected() -> None:
    server, client = _pair()
    counter, ciphertext = client.seal(b"short")
    for index in range(len(ciphertext)):
        for bit in (0x01, 0x80):
            tampered = bytearray(ciphertext)
            tampered[index] ^= bit
            with pytest.raises(DecryptError):
                server.open(counter, bytes(tampered))
    assert server.last_opened == 0
    assert server.open(counter, ciphertext) == b"short"


@pytest.mark.parametrize("cut", [0, 1, 15, 16])
def test_truncated_frames_are_rejected(cut: int) -> None:
    server, client = _pair()
    counter, ciphertext = client.seal(b"hi")
    with pytest.raises(DecryptError):
        server.open(counter, ciphertext[:cut])


def test_appended_bytes_are_rejected() -> None:
    server, client = _pair()
    counter, ciphertext = client.seal(b"hi")
    with pytest.raises(DecryptError):
        server.open(counter, ciphertext + b"\x00")


def test_frame_under_other_counter_is_rejected() -> None:
    server, client = _pair()
    client.seal(b"skipped")
    _, second = client.seal(b"second")
    with pytest.raises(DecryptError):
        server.open(1, second)  # the counter is authenticated through the nonce


def test_reflected_frame_fails_wrong_direction() -> None:
    server = Channel.server(KEY)
    counter, ciphertext = server.seal(b"to client")
    with pytest.raises(DecryptError):
        server.open(counter, ciphertext)  # server→client frame sent back to the server
    other_client = Channel.client(KEY)
    counter, ciphertext = Channel.client(KEY).seal(b"to server")
    with pytest.raises(DecryptError):
        other_client.open(counter, ciphertext)


def test_wrong_key_is_rejected() -> None:
    server, _ = _pair()
    _, stranger = _pair()
    counter, ciphertext = stranger.seal(b"hi")
    with pytest.raises(DecryptError):
        server.open(counter, ciphertext)


def test_forged_frame_does_not_advance_the_window() -> None:
    server, client = _pair()
    with pytest.raises(DecryptError):
        server.open(MAX_COUNTER, bytes(40))  # forged frame claiming the last counter
    with pytest.raises(DecryptError):
        server.open(5, bytes(40))
    assert server.last_opened == 0
    counter, ciphertext = client.seal(b"genuine")
    assert counter == 1
    assert server.open(counter, ciphertext) == b"genuine"


# --- construction and hygiene ------------------------------------------------------


@pytest.mark.parametrize("key", [b"", bytes(31), bytes(33), bytearray(32)])
def test_channel_requires_a_32_byte_key(key: bytes) -> None:
    with pytest.raises(ValueError):
        Channel.server(key)


def test_channel_refuses_same_direction_both_ways() -> None:
    with pytest.raises(ValueError):
        Channel(KEY, send_direction=CLIENT_TO_SERVER, recv_direction=CLIENT_TO_SERVER)


@pytest.mark.parametrize(
    ("direction", "counter"), [(0x00, 1), (0x03, 1), (0x01, -1), (0x01, 2**64)]
)
def test_nonce_for_rejects_bad_arguments(direction: int, counter: int) -> None:
    with pytest.raises(ValueError):
        nonce_for(direction, counter)


def test_reprs_do_not_leak_keys() -> None:
    channel = Channel.server(KEY)
    text = repr(channel)
    assert KEY.hex() not in text and b64encode(KEY) not in text and repr(KEY) not in text
    key = EphemeralKey.generate()
    secret = bytes(key._private)
    assert secret.hex() not in repr(key) and b64encode(secret) not in repr(key)
    assert key.public_b64 in repr(key)
