"""The per-connection session of wire protocol v1: key agreement and sealed frames.

One websocket connection = one fresh X25519 key pair on the gateway side
(:class:`EphemeralKey`) and one :class:`Channel` built from the NaCl shared key.
Frames are XSalsa20-Poly1305 ``secretbox``\\es whose nonce is never sent: it is
derived from the direction and a counter, so both ends agree on it implicitly and
the counter doubles as the replay window. The byte layout matches tweetnacl
(``nacl.box.before`` + ``nacl.secretbox``) used by the widget and console.

Pure library: no I/O, no event loop. A :class:`Channel` is not thread-safe; it is
owned by the single task that serves its connection.
"""

from __future__ import annotations

from typing import Final

import nacl.bindings
import nacl.exceptions
import nacl.public

from crypto.encoding import EncodingError, b64decode, b64encode

__all__ = [
    "CLIENT_TO_SERVER",
    "KEY_SIZE",
    "MAX_COUNTER",
    "SERVER_TO_CLIENT",
    "Channel",
    "ChannelError",
    "DecryptError",
    "EphemeralKey",
    "KeyFormatError",
    "ReplayError",
    "nonce_for",
]

CLIENT_TO_SERVER: Final = 0x01
"""Direction byte of frames sealed by the widget/console and opened by the gateway."""
SERVER_TO_CLIENT: Final = 0x02
"""Direction byte of frames sealed by the gateway. Distinct directions mean the two
sides never reuse a nonce under the shared key, and a frame cannot be reflected."""
MAX_COUNTER: Final = 2**64 - 1
"""Largest counter that fits the 8-byte nonce field; a channel is exhausted after it."""
KEY_SIZE: Final = 32
"""Size of X25519 public keys and of the shared secretbox key."""

_NONCE_SIZE: Final = 24
_MAC_SIZE: Final = 16
_DIRECTIONS: Final = frozenset({CLIENT_TO_SERVER, SERVER_TO_CLIENT})


class ChannelError(Exception):
    """Base of every channel failure; the gateway closes the socket with 1008 on it."""


class ReplayError(ChannelError):
    """The counter was not strictly greater than the last opened one, or out of range.

    Covers replays, reordering and exhausted counters: the protocol runs over an
    ordered transport, so any of these means tampering or a broken peer.
    """


class DecryptError(ChannelError):
    """The frame failed authentication: forged, tampered, wrong key or wrong direction."""


class KeyFormatError(ChannelError):
    """The peer's public key is malformed or a low-order point (no usable shared key)."""


def nonce_for(direction: int, counter: int) -> bytes:
    """Build the 24-byte nonce: direction byte ‖ 15 zero bytes ‖ 8-byte big-endian counter.

    Public so that other implementations (and tests) can be checked against the
    exact layout in the protocol document.
    """
    if direction not in _DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}")
    if not 0 <= counter <= MAX_COUNTER:
        raise ValueError("counter out of range")
    return _nonce_prefix(direction) + counter.to_bytes(8, "big")


def _nonce_prefix(direction: int) -> bytes:
    return bytes((direction,)) + bytes(_NONCE_SIZE - 9)


class EphemeralKey:
    """A one-connection X25519 key pair; the gateway's half of the handshake.

    Fresh per connection so that a later compromise of the process memory of one
    connection says nothing about others (forward secrecy between sessions).
    """

    __slots__ = ("_private",)

    def __init__(self, private_key: nacl.public.PrivateKey) -> None:
        """Wrap an existing key; use :meth:`generate` in production code."""
        self._private = private_key

    @classmethod
    def generate(cls) -> EphemeralKey:
        """Create a fresh key pair from the OS CSPRNG."""
        return cls(nacl.public.PrivateKey.generate())

    @property
    def public_bytes(self) -> bytes:
        """The 32-byte X25519 public key."""
        return bytes(self._private.public_key)

    @property
    def public_b64(self) -> str:
        """The public key as sent in the ``hello`` frame's ``server_pk``."""
        return b64encode(self.public_bytes)

    def shared_key(self, peer_public_b64: str) -> bytes:
        """Derive the 32-byte NaCl shared key (``crypto_box_beforenm``) with a peer.

        Raises :class:`KeyFormatError` for anything but canonical base64 of 32
        bytes, and for low-order peer keys: libsodium refuses those because they
        force an all-zero X25519 result that an attacker could predict.
        """
        try:
            peer = nacl.public.PublicKey(b64decode(peer_public_b64, expected_len=KEY_SIZE))
        except EncodingError as exc:
            raise KeyFormatError(f"bad peer public key: {exc}") from None
        try:
            return nacl.public.Box(self._private, peer).shared_key()
        except nacl.exceptions.CryptoError:
            raise KeyFormatError("peer public key is a low-order point") from None

    def __repr__(self) -> str:
        return f"EphemeralKey(public={self.public_b64!r})"


class Channel:
    """Seals outgoing and opens incoming frames of one connection, in order.

    Counters start at 1 in each direction. :meth:`open` accepts only a counter
    strictly greater than the last one it opened, and moves that mark only after
    the frame authenticates, so a forged frame can neither be replayed nor burn
    counters to block the genuine ones.

    Hot path: the nonce prefix is precomputed and libsodium's ``*_easy`` calls are
    used directly (same bytes as ``SecretBox(key).encrypt(pt, nonce).ciphertext``,
    about twice as fast, no intermediate ``EncryptedMessage``).
    """

    __slots__ = ("_key", "_last_opened", "_last_sealed", "_recv_prefix", "_send_prefix")

    def __init__(self, shared_key: bytes, *, send_direction: int, recv_direction: int) -> None:
        """Build a channel; prefer :meth:`server` / :meth:`client`, which fix the directions."""
        if not isinstance(shared_key, bytes) or len(shared_key) != KEY_SIZE:
            raise ValueError(f"shared key must be {KEY_SIZE} bytes")
        if send_direction not in _DIRECTIONS or recv_direction not in _DIRECTIONS:
            raise ValueError("unknown direction")
        if send_direction == recv_direction:
            raise ValueError("send and receive directions must differ")
        self._key = shared_key
        self._send_prefix = _nonce_prefix(send_direction)
        self._recv_prefix = _nonce_prefix(recv_direction)
        self._last_sealed = 0
        self._last_opened = 0

    @classmethod
    def server(cls, shared_key: bytes) -> Channel:
        """The gateway's side: seals server→client, opens client→server."""
        return cls(shared_key, send_direction=SERVER_TO_CLIENT, recv_direction=CLIENT_TO_SERVER)

    @classmethod
    def client(cls, shared_key: bytes) -> Channel:
        """The widget/console side (used by tests, bots and SDKs): the reverse of :meth:`server`."""
        return cls(shared_key, send_direction=CLIENT_TO_SERVER, recv_direction=SERVER_TO_CLIENT)

    @property
    def last_sealed(self) -> int:
        """Counter of the last frame sealed (0 before the first)."""
        return self._last_sealed

    @property
    def last_opened(self) -> int:
        """Counter of the last frame successfully opened (0 before the first)."""
        return self._last_opened

    def seal(self, plaintext: bytes) -> tuple[int, bytes]:
        """Encrypt the next outgoing frame; returns ``(counter, mac ‖ ciphertext)``.

        Raises :class:`ChannelError` once the counter space is exhausted rather
        than ever reusing a nonce.
        """
        counter = self._last_sealed + 1
        if counter > MAX_COUNTER:
            raise ChannelError("send counter exhausted; open a new connection")
        nonce = self._send_prefix + counter.to_bytes(8, "big")
        ciphertext = nacl.bindings.crypto_secretbox_easy(plaintext, nonce, self._key)
        self._last_sealed = counter
        return counter, ciphertext

    def open(self, counter: int, ciphertext: bytes) -> bytes:
        """Authenticate and decrypt an incoming frame sealed under ``counter``.

        :raises ReplayError: ``counter`` is not an int, not above the last opened
            counter, or above :data:`MAX_COUNTER`.
        :raises DecryptError: the frame does not authenticate. The window is unchanged.
        """
        if type(counter) is not int:  # bool is an int subclass; JSON true is not a counter
            raise ReplayError("counter must be an integer")
        if counter <= self._last_opened:
            raise ReplayError(f"counter {counter} not after {self._last_opened}")
        if counter > MAX_COUNTER:
            raise ReplayError("counter out of range")
        if len(ciphertext) < _MAC_SIZE:
            raise DecryptError("frame too short")
        nonce = self._recv_prefix + counter.to_bytes(8, "big")
        try:
            plaintext = nacl.bindings.crypto_secretbox_open_easy(ciphertext, nonce, self._key)
        except nacl.exceptions.CryptoError:
            raise DecryptError("frame failed authentication") from None
        self._last_opened = counter
        return plaintext

    def seal_b64(self, plaintext: bytes) -> tuple[int, str]:
        """:meth:`seal`, with the ciphertext base64-encoded for the ``"c"`` field."""
        counter, ciphertext = self.seal(plaintext)
        return counter, b64encode(ciphertext)

    def open_b64(self, counter: int, ciphertext_b64: str) -> bytes:
        """:meth:`open` for the ``"c"`` field; undecodable base64 is a :class:`DecryptError`.

        Keeping bad base64 inside the :class:`ChannelError` family lets the caller
        handle every broken frame with one ``except``.
        """
        try:
            ciphertext = b64decode(ciphertext_b64)
        except EncodingError as exc:
            raise DecryptError(f"bad ciphertext encoding: {exc}") from None
        return self.open(counter, ciphertext)

    def __repr__(self) -> str:
        return (
            f"Channel(send_direction={self._send_prefix[0]:#04x}, "
            f"last_sealed={self._last_sealed}, last_opened={self._last_opened})"
        )
