"""Base64 at the trust boundary.

Every public key, ciphertext and signature crosses the wire or the disk as
standard base64 with padding (see "Wire protocol (v1)"). Decoding is strict on
purpose: a lenient decoder lets one value have many spellings (stray whitespace,
non-zero padding bits, missing padding), which turns into cache misses, duplicate
rows and signature-malleability surprises further in. Here exactly one spelling
of each byte string is accepted.
"""

from __future__ import annotations

import base64
import binascii

__all__ = ["EncodingError", "b64decode", "b64encode"]


class EncodingError(ValueError):
    """Raised when text is not the one canonical base64 spelling we accept.

    A ``ValueError`` subclass so generic input-validation handlers still catch it.
    """


def b64encode(data: bytes) -> str:
    """Encode ``data`` as standard-alphabet base64 with padding (the wire format)."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str, *, expected_len: int | None = None) -> bytes:
    """Decode canonical standard base64, optionally insisting on a decoded length.

    Rejects non-ASCII, whitespace, URL-safe characters, bad or missing padding and
    non-canonical trailing bits, so that ``b64encode(b64decode(t)) == t`` always
    holds. ``expected_len`` lets callers validate fixed-size values (keys,
    signatures) in the same step, with one error type for every failure.
    """
    if not isinstance(text, str):
        raise EncodingError(f"expected base64 text, got {type(text).__name__}")
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        raise EncodingError("base64 text must be ASCII") from None
    try:
        data = base64.b64decode(raw, validate=True)
    except binascii.Error as exc:
        raise EncodingError(f"invalid base64: {exc}") from None
    # validate=True still accepts non-zero padding bits ("QR==" decodes like "QQ==").
    if base64.b64encode(data) != raw:
        raise EncodingError("non-canonical base64")
    if expected_len is not None and len(data) != expected_len:
        raise EncodingError(f"expected {expected_len} bytes, got {len(data)}")
    return data
