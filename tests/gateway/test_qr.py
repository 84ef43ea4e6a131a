"""QR rendering of enrolment links (gateway/qr.py)."""

from __future__ import annotations

from gateway.qr import qr_png, qr_terminal


def test_qr_png_is_png() -> None:
    data = qr_png("otpauth://totp/cipherdesk:a@b.c?secret=JBSWY3DPEHPK3PXP")
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 100


def test_qr_terminal_is_square_block_art() -> None:
    text = qr_terminal("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP")
    lines = text.splitlines()
    assert len({len(line) for line in lines}) == 1
    width = len(lines[0])
    assert width // 2 <= len(lines) <= width // 2 + 1  # two module rows per line
    assert set(text) <= set(" ▀▄█\n")
    # Quiet zone drawn as light modules (blocks) by default, blank when inverted.
    assert lines[0] == "█" * width
    assert qr_terminal("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP", invert=True).splitlines()[0] == (
        " " * width
    )
