"""Fuzz target: opening sealed frames (``crypto/channel.py`` behind the frame decoder).

Two shapes of input, chosen by the first byte:

* a whole websocket text frame → :func:`gateway.ws.connection.open_sealed` (decode, strict
  base64, replay window, XSalsa20-Poly1305);
* ``counter ‖ raw ciphertext`` → :meth:`crypto.channel.Channel.open` directly, with one
  in five inputs *validly sealed* by a client channel, so the fuzzer also drives the
  replay window past authentication.

Contract: plaintext or :class:`ProtocolViolation` (1008) / :class:`ChannelError`; a frame
the client really sealed opens to exactly its plaintext, and never a second time.
"""

from __future__ import annotations

from crypto.channel import Channel, ChannelError
from gateway.protocol import CloseCode
from gateway.ws.connection import ProtocolViolation, open_sealed

_SHARED = bytes(range(32))


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode, rest = data[0] % 5, data[1:]
    server = Channel.server(_SHARED)
    if mode == 0:
        try:
            open_sealed(server, rest.decode("utf-8", "replace"))
        except ProtocolViolation as exc:
            assert exc.code == CloseCode.POLICY
        return
    if mode == 1:
        client = Channel.client(_SHARED)
        for _ in range(rest[0] % 4 if rest else 0):
            client.seal(b"")  # advance the client's counter a little
        counter, ciphertext = client.seal(rest)
        assert server.open(counter, ciphertext) == rest
        try:
            server.open(counter, ciphertext)
        except ChannelError:
            return
        raise AssertionError("a replayed frame opened twice")
    counter = int.from_bytes(rest[:9], "big", signed=mode == 2)
    try:
        server.open(counter, rest[9:])
    except ChannelError:
        return
    # Only a genuinely sealed frame (a corpus seed) opens; it never opens twice.
    try:
        server.open(counter, rest[9:])
    except ChannelError:
        return
    raise AssertionError("a replayed frame opened twice")
