"""Strict base64: exactly one accepted spelling per byte string."""

from __future__ import annotations

import pytest

from crypto.encoding import EncodingError, b64decode, b64encode


def test_round_trip_uses_standard_alphabet_with_padding() -> None:
    data = bytes([0xFB, 0xFF, 0xBF, 0x00])
    text = b64encode(data)
    assert text == "+/+/AA=="
    assert b64decode(text) == data


def test_empty_round_trip() -> None:
    assert b64encode(b"") == ""
    assert b64decode("") == b""


@pytest.mark.parametrize(
    "text",
    [
        "AA",  # missing padding
        "AA=",  # short padding
        "AA==AA==",  # data after padding
        "-_-_",  # URL-safe alphabet
        "AA ==",  # inner whitespace
        " AA==",  # leading whitespace
        "AA==\n",  # trailing newline
        "QR==",  # non-zero padding bits (non-canonical spelling of b"A")
        "AAé=",  # non-ASCII
        "A",  # impossible length
    ],
)
def test_rejects_non_canonical_text(text: str) -> None:
    with pytest.raises(EncodingError):
        b64decode(text)


def test_rejects_non_str_input() -> None:
    with pytest.raises(EncodingError):
        b64decode(b"AA==")  # type: ignore[arg-type]
    with pytest.raises(EncodingError):
        b64decode(None)  # type: ignore[arg-type]


def test_expected_len_is_enforced() -> None:
    text = b64encode(bytes(32))
    assert b64decode(text, expected_len=32) == bytes(32)
    with pytest.raises(EncodingError, match="expected 31 bytes"):
        b64decode(text, expected_len=31)


def test_encoding_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        b64decode("!!!!")
