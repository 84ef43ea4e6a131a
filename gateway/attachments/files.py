"""What an uploaded file really is, and the same file without its metadata.

Why not trust the name or the browser's type: both come from the sender. The bytes are
sniffed instead -- Pillow opens images (and refuses decompression bombs), PDFs are known
by their header and trailer -- and only the types the installation allows pass.

Images are decoded and encoded again from their pixels, so nothing but pixels survives:
EXIF (GPS position, camera serial, owner name), XMP, IPTC and PNG text chunks are gone,
the EXIF orientation is applied first so the picture still stands upright. PDFs are
passed as sent (the issue asks for image metadata; a PDF's own metadata is named in the
README's threat model as not removed).
"""

from __future__ import annotations

import io
import unicodedata
import warnings
from dataclasses import dataclass
from typing import Any, Final

from PIL import Image, ImageOps, JpegImagePlugin, UnidentifiedImageError

IMAGE_TYPES: Final = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "GIF": "image/gif",
    "WEBP": "image/webp",
}
PDF_TYPE: Final = "application/pdf"
ALL_TYPES: Final = frozenset({*IMAGE_TYPES.values(), PDF_TYPE})
"""Every type the gateway knows how to check; an installation may allow fewer."""

MAX_PIXELS: Final = 40_000_000
"""Pixels of the largest image accepted (a 40-megapixel photo); bigger is a bomb."""
MAX_NAME_CHARS: Final = 120
_PDF_TAIL: Final = 1024  # "%%EOF" must sit near the end of a PDF


class FileRefused(Exception):
    """The file cannot be accepted; ``code`` is documented (docs/PROTOCOL.md
    "Attachments") and ``str()`` is safe to show the sender."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class CleanFile:
    """A file as the gateway will store it: sniffed type, metadata removed."""

    data: bytes
    content_type: str
    width: int | None = None
    height: int | None = None


def clean_name(raw: str) -> str:
    """A file name fit to show: no directory part, no control, bidi or format characters
    (a right-to-left override turns ``gpj.exe`` into ``exe.jpg`` on screen), NFC, at most
    :data:`MAX_NAME_CHARS` characters. Raises :class:`FileRefused` when nothing is left."""
    base = raw.replace("\\", "/").rsplit("/", 1)[-1]
    kept = "".join(
        ch for ch in unicodedata.normalize("NFC", base) if unicodedata.category(ch)[0] != "C"
    ).strip(" .")
    if not kept:
        raise FileRefused("bad_name", "the file needs a name")
    return kept[:MAX_NAME_CHARS]


def clean_file(data: bytes, allowed: frozenset[str]) -> CleanFile:
    """Sniff ``data`` and return what may be stored, or raise :class:`FileRefused`
    (``file_type``: not an allowed image or PDF; ``file_unreadable``: claims to be one but
    does not decode; ``file_too_big``: more pixels than :data:`MAX_PIXELS`). CPU-bound:
    callers run it off the event loop."""
    if data.startswith(b"%PDF-"):
        if PDF_TYPE not in allowed:
            raise FileRefused("file_type", "PDF files are not accepted here")
        if b"%%EOF" not in data[-_PDF_TAIL:]:
            raise FileRefused("file_unreadable", "the PDF is incomplete")
        return CleanFile(data=data, content_type=PDF_TYPE)
    return _clean_image(data, allowed)


def _clean_image(data: bytes, allowed: frozenset[str]) -> CleanFile:
    with warnings.catch_warnings():
        # Pillow warns between MAX_IMAGE_PIXELS and twice that; a warning is a refusal here.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=list(IMAGE_TYPES)) as image:
                content_type = IMAGE_TYPES.get(image.format or "")
                if content_type is None or content_type not in allowed:
                    raise FileRefused("file_type", "this kind of file is not accepted here")
                if image.width * image.height > MAX_PIXELS:
                    raise FileRefused("file_too_big", "the image has too many pixels")
                out = _reencode(image, image.format or "PNG")
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise FileRefused("file_too_big", "the image has too many pixels") from None
        except UnidentifiedImageError:
            raise FileRefused(
                "file_type", "only images (PNG, JPEG, GIF, WebP) and PDF files can be sent"
            ) from None
        except (OSError, ValueError, SyntaxError, EOFError):
            raise FileRefused("file_unreadable", "the image is damaged") from None
    return out


def _reencode(image: Image.Image, fmt: str) -> CleanFile:
    """The image written again from its pixels, in its own format, with no metadata."""
    buffer = io.BytesIO()
    if getattr(image, "n_frames", 1) > 1:  # animated GIF/WebP: every frame and its timing
        image.info = _drawing_info(image.info)
        image.save(buffer, fmt, save_all=True)
        width, height = image.size
    else:
        clean = ImageOps.exif_transpose(image)  # upright before the orientation tag goes
        if fmt == "JPEG" and clean.mode not in ("RGB", "L", "CMYK"):
            clean = clean.convert("RGB")
        clean.info = _drawing_info(clean.info)
        clean.save(buffer, fmt, **_quality(image, fmt))
        width, height = clean.size
    return CleanFile(
        data=buffer.getvalue(), content_type=IMAGE_TYPES[fmt], width=width, height=height
    )


def _quality(original: Image.Image, fmt: str) -> dict[str, Any]:
    """Encoder options that keep a photo's size and look: a JPEG is written with its own
    quantisation tables and chroma subsampling (a fixed quality could double a phone
    photo's bytes); WebP at quality 90."""
    if fmt == "JPEG":
        tables = getattr(original, "quantization", None)
        sampling = JpegImagePlugin.get_sampling(original)
        if tables and sampling >= 0:
            return {"qtables": tables, "subsampling": sampling}
        return {"quality": 90}
    return {"quality": 90} if fmt == "WEBP" else {}


_DRAWING_KEYS: Final = frozenset({"transparency", "background", "loop", "duration", "disposal"})


def _drawing_info(info: dict[Any, Any]) -> dict[Any, Any]:
    """Of an image's ``info``, only what changes how it looks. Pillow writes back what
    ``info`` holds (EXIF, XMP, ICC profile, PNG text, GIF comment): all of it is dropped."""
    return {k: v for k, v in info.items() if k in _DRAWING_KEYS}
