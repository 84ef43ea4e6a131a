"""Fuzz target: the websocket frame decoders and the server's handshake step.

Outside bytes → :func:`gateway.protocol.decode_plain` / ``decode_customer`` /
``decode_agent`` (client → server frames) and :func:`gateway.ws.connection.accept_key` (the
``key`` frame → channel). Contract: a decoded frame or :class:`FrameError` /
:class:`ProtocolViolation` (close 1008), nothing else, for any input.
"""

from __future__ import annotations

from crypto.channel import EphemeralKey
from gateway.protocol import (
    CloseCode,
    FrameError,
    decode_agent,
    decode_customer,
    decode_hello,
    decode_plain,
    encode,
)
from gateway.ws.connection import ProtocolViolation, accept_key

_SERVER_KEY = EphemeralKey.generate()
_DECODERS = (decode_plain, decode_customer, decode_agent, decode_hello)


def test_one_input(data: bytes) -> None:
    # aiohttp hands text frames over as str; inner frames arrive as bytes.
    text = data.decode("utf-8", "replace")
    for decode in _DECODERS:
        for value in (data, text):
            try:
                frame = decode(value)
            except FrameError as exc:
                assert str(exc).startswith("invalid frame"), exc
            else:
                encode(frame)  # whatever decodes must encode again
    try:
        frame, channel = accept_key(_SERVER_KEY, text)
    except ProtocolViolation as exc:
        assert exc.code == CloseCode.POLICY, exc.code
    else:
        assert frame.client_pk and channel.last_opened == 0
