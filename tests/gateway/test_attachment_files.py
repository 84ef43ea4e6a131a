"""Attachment building blocks without a server: sniffing and metadata stripping
(``gateway/attachments/files.py``), tickets (``tickets.py``) and the clamd client
(``plugins/clamd.py``) against the protocol-true fake."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image, PngImagePlugin

from crypto.e2e import E2EError, FileRecord, file_text, parse_file_text
from crypto.envelope import Keyring, MasterKey
from gateway.attachments.files import ALL_TYPES, FileRefused, clean_file, clean_name
from gateway.attachments.tickets import (
    DownloadGrant,
    TicketBox,
    TicketError,
    UploadGrant,
    new_transfer_key,
    open_transfer,
    open_upload,
    seal_transfer,
    seal_upload,
)
from plugins.api import ScanUnavailable
from plugins.clamd import ClamdScanner, parse_clamd_address, verdict
from tests.gateway.helpers import FakeClock
from tests.plugins.fake_clamd import EICAR, FakeClamd


def _refused(data: bytes, allowed: frozenset[str] = ALL_TYPES) -> str:
    with pytest.raises(FileRefused) as info:
        clean_file(data, allowed)
    return info.value.code


def test_png_text_chunks_and_exif_are_removed() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Li Si, 13800138000")
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    out = io.BytesIO()
    Image.new("RGBA", (10, 7), (1, 2, 3, 128)).save(out, "PNG", pnginfo=info, exif=exif)
    assert b"Li Si" in out.getvalue() and b"PhoneMaker" in out.getvalue()
    clean = clean_file(out.getvalue(), ALL_TYPES)
    assert (clean.content_type, clean.width, clean.height) == ("image/png", 10, 7)
    assert b"Li Si" not in clean.data and b"PhoneMaker" not in clean.data
    assert Image.open(io.BytesIO(clean.data)).getpixel((0, 0)) == (1, 2, 3, 128)


def test_exif_orientation_is_applied_before_it_is_dropped() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    out = io.BytesIO()
    Image.new("RGB", (40, 20)).save(out, "JPEG", exif=exif)
    clean = clean_file(out.getvalue(), ALL_TYPES)
    assert (clean.width, clean.height) == (20, 40)


def test_animated_gif_keeps_its_frames_and_loses_its_comment() -> None:
    frames = [Image.new("RGB", (8, 8), (i * 80, 0, 0)) for i in range(3)]
    out = io.BytesIO()
    frames[0].save(
        out, "GIF", save_all=True, append_images=frames[1:], comment=b"home address", duration=50
    )
    clean = clean_file(out.getvalue(), ALL_TYPES)
    assert Image.open(io.BytesIO(clean.data)).n_frames == 3
    assert b"home address" in out.getvalue() and b"home address" not in clean.data


def test_types_are_sniffed_not_believed() -> None:
    assert _refused(b"MZ\x90\x00" + b"\0" * 64) == "file_type"
    assert _refused(b"<svg xmlns='http://www.w3.org/2000/svg'/>") == "file_type"
    assert _refused(b"%PDF-1.7\n no trailer") == "file_unreadable"
    png = io.BytesIO()
    Image.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3)).save(png, "PNG")
    half = png.getvalue()[: len(png.getvalue()) // 2]
    assert _refused(half) == "file_unreadable"  # cut off in its pixels
    assert _refused(png.getvalue(), frozenset({"application/pdf"})) == "file_type"
    assert _refused(b"%PDF-1.4\n%%EOF", frozenset({"image/png"})) == "file_type"


def test_decompression_bombs_are_refused() -> None:
    out = io.BytesIO()
    Image.new("1", (9000, 9000)).save(out, "PNG")  # 81 MP in a few kilobytes
    assert len(out.getvalue()) < 100_000
    assert _refused(out.getvalue()) == "file_too_big"


def test_names_lose_paths_and_invisible_characters() -> None:
    assert clean_name("C:\\Users\\li\\Desktop\\发票.pdf") == "发票.pdf"
    assert clean_name("../../etc/passwd") == "passwd"
    assert clean_name("photo\u202egpj.exe") == "photogpj.exe"  # no right-to-left override
    assert len(clean_name("a" * 300 + ".png")) == 120
    with pytest.raises(FileRefused):
        clean_name("\u200b\u202e ..")


def _grant(expires: float) -> UploadGrant:
    return UploadGrant(
        tenant="demo",
        chat="c1",
        msg_id="m1",
        sender="customer",
        agent=None,
        size=10,
        expires=expires,
        key=new_transfer_key(),
    )


def test_tickets_expire_and_cannot_be_forged() -> None:
    clock = FakeClock()
    keyring = Keyring([MasterKey.generate()])
    box = TicketBox(keyring, clock, ttl=120)
    grant = _grant(box.expiry())
    ticket = box.issue(grant)
    assert box.open(ticket) == grant
    # another installation's key, a flipped character, garbage: all the same refusal
    other = TicketBox(Keyring([MasterKey.generate()]), clock, ttl=120)
    flipped = ticket[:10] + ("A" if ticket[10] != "A" else "B") + ticket[11:]
    for bad in (other.issue(grant), flipped, "!!", "x" * 2000):
        with pytest.raises(TicketError) as info:
            box.open(bad)
        assert info.value.code == "ticket_invalid"
    clock.advance(121)
    with pytest.raises(TicketError) as late:
        box.open(ticket)
    assert late.value.code == "ticket_expired"


def test_tickets_survive_a_master_key_rotation() -> None:
    clock = FakeClock()
    old = MasterKey.generate()
    before = TicketBox(Keyring([old]), clock, ttl=60)
    grant = DownloadGrant(
        tenant="demo",
        chat="c1",
        file="fabcdefgh",
        reader="customer",
        expires=clock.now + 60,
        key=new_transfer_key(),
    )
    ticket = before.issue(grant)
    after = TicketBox(Keyring([MasterKey.generate(), old]), clock, ttl=60)
    assert after.open(ticket) == grant


def test_transfer_sealing_round_trip() -> None:
    key = new_transfer_key()
    body = seal_transfer(key, b"file bytes")
    assert len(body) == len(b"file bytes") + 40 and open_transfer(key, body) == b"file bytes"
    with pytest.raises(ValueError):
        open_transfer(new_transfer_key(), body)
    # an upload carries its name inside the seal (never in the URL)
    upload = seal_upload(key, "收据.jpg", b"\xff\xd8\xff")
    assert open_upload(key, upload) == ("收据.jpg", b"\xff\xd8\xff")
    for bad in (b"\xff\xff" + b"x" * 10, b"\x00\x02\xc3\x28rest", b"\x00"):
        with pytest.raises(ValueError):
            open_upload(key, seal_transfer(key, bad))


def test_clamd_addresses_and_answers() -> None:
    assert parse_clamd_address("tcp:127.0.0.1:3310").port == 3310
    assert parse_clamd_address("unix:/run/clamav/clamd.ctl").path == "/run/clamav/clamd.ctl"
    for bad in ("127.0.0.1:3310", "tcp:host", "unix:relative", "tcp:h:99999"):
        with pytest.raises(ValueError):
            parse_clamd_address(bad)
    assert verdict("stream: OK").clean
    assert verdict("stream: Win.Test.EICAR_HDB-1 FOUND").signature == "Win.Test.EICAR_HDB-1"
    with pytest.raises(ScanUnavailable):
        verdict("INSTREAM size limit exceeded. ERROR")


async def test_clamd_scanner_against_the_protocol() -> None:
    async with FakeClamd(stream_max=100_000) as clamd:
        scanner = ClamdScanner(f"tcp:127.0.0.1:{clamd.port}", timeout=5)
        big = b"%PDF-" + b"x" * 70_000  # two INSTREAM chunks
        assert (await scanner.scan(big)).clean and clamd.scanned == [big]
        found = await scanner.scan(b"prefix " + EICAR)
        assert (found.clean, found.signature) == (False, "Eicar-Test-Signature")
        with pytest.raises(ScanUnavailable):  # over clamd's StreamMaxLength
            await scanner.scan(b"y" * 150_000)
        await clamd.stop()
        with pytest.raises(ScanUnavailable):
            await scanner.scan(b"anything")


def test_e2e_file_records_round_trip_and_refuse_bad_ones() -> None:
    record = FileRecord(name="收据.jpg", type="image/jpeg", size=3, sha256="A" * 44)
    assert parse_file_text(file_text(record)) == record
    assert parse_file_text("an ordinary message") is None
    prefix = "\u0000cipherdesk-file:"
    for bad in (
        "{",
        "[]",
        '{"name":"","type":"x","size":1,"sha256":"' + "A" * 44 + '"}',
        '{"name":"a","type":"x","size":true,"sha256":"' + "A" * 44 + '"}',
        '{"name":"a","type":"x","size":1,"sha256":"short"}',
    ):
        with pytest.raises(E2EError):
            parse_file_text(prefix + bad)


def test_a_photo_keeps_its_size_and_quality_tables() -> None:
    """Re-encoding with the photo's own tables: a fixed quality once grew a q85 phone
    photo by 17% (and could push it past the size limit a second time)."""
    out = io.BytesIO()
    photo = Image.effect_noise((640, 480), 40).convert("RGB")
    photo.save(out, "JPEG", quality=85, exif=Image.Exif())
    clean = clean_file(out.getvalue(), ALL_TYPES)
    assert len(clean.data) <= len(out.getvalue()) * 1.02
    original = Image.open(io.BytesIO(out.getvalue()))
    assert Image.open(io.BytesIO(clean.data)).quantization == original.quantization
