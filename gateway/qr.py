"""QR codes of TOTP enrolment links: a PNG for the web console, Unicode blocks for the CLI.

Rendering is presentation, so it lives in the gateway; :mod:`auth.totp` only builds the
``otpauth://`` link.
"""

from __future__ import annotations

import io

import qrcode
import qrcode.image.pure

__all__ = ["qr_png", "qr_terminal"]


def qr_png(uri: str) -> bytes:
    """Render ``uri`` as a PNG QR code (pure Python via pypng; no Pillow needed)."""
    image = qrcode.make(uri, image_factory=qrcode.image.pure.PyPNGImage)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()


def qr_terminal(uri: str, *, invert: bool = False) -> str:
    """Render ``uri`` as a QR code made of Unicode half blocks, for a CLI.

    Each text line holds two module rows (``▀``, ``▄``, ``█``, space), so the code
    stays roughly square in a terminal. By default *light* modules (and the quiet
    zone) are drawn, which yields dark-on-light on the usual dark-background
    terminal, the polarity scanners expect; pass ``invert=True`` on a light
    background.
    """
    qr = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_L)
    qr.add_data(uri)
    qr.make(fit=True)
    matrix = qr.get_matrix()
    ink = [[bool(cell) == invert for cell in row] for row in matrix]
    if len(ink) % 2:
        ink.append([not invert] * len(ink[0]))  # a light row below the quiet zone
    glyphs = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}
    lines = []
    for top, bottom in zip(ink[::2], ink[1::2], strict=True):
        lines.append("".join(glyphs[(a, b)] for a, b in zip(top, bottom, strict=True)))
    return "\n".join(lines) + "\n"
