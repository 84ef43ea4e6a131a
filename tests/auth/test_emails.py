"""E-mail normalisation, including Unicode tricks."""

from __future__ import annotations

import pytest

from auth.emails import InvalidEmail, normalize_email


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("alice@example.com", "alice@example.com"),
        ("  Alice@Example.COM \n", "alice@example.com"),
        ("Ａｌｉｃｅ＠ｅｘａｍｐｌｅ．ｃｏｍ", "alice@example.com"),  # full-width @ and dot
        ("alice＠example.com", "alice@example.com"),
        ("bob.smith+tag@mail.example.org", "bob.smith+tag@mail.example.org"),
        ("user@bücher.de", "user@xn--bcher-kva.de"),
        ("user@BÜCHER.de", "user@xn--bcher-kva.de"),
        ("x@例え。テスト", "x@xn--r8jz45g.xn--zckzah"),  # ideographic full stop
        ("STRASSE@example.com", "strasse@example.com"),
        ("straße@example.com", "strasse@example.com"),  # casefold
        ("ｊｏｈｎ.ｄｏｅ@example.com", "john.doe@example.com"),
        ("δοκιμή@example.com", "δοκιμή@example.com"),  # single non-Latin script is fine
        ("用户@example.com", "用户@example.com"),
        ("user@xn--bcher-kva.de", "user@xn--bcher-kva.de"),
    ],
)
def test_normalises(raw: str, canonical: str) -> None:
    assert normalize_email(raw) == canonical
    assert normalize_email(canonical) == canonical  # idempotent


def test_equivalent_spellings_collide() -> None:
    spellings = ["Alice@Example.com", "ＡＬＩＣＥ＠ＥＸＡＭＰＬＥ．ＣＯＭ", " alice@example.com"]
    assert {normalize_email(s) for s in spellings} == {"alice@example.com"}


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "alice",
        "alice@",
        "@example.com",
        "a@b@example.com",
        "ali ce@example.com",
        "alice@exa mple.com",
        "ad\u200bmin@example.com",  # zero-width space
        "admin\u200d@example.com",  # zero-width joiner
        "admin@exam\u200cple.com",  # zero-width non-joiner in domain
        "\u202eadmin@example.com",  # bidi override
        "ad\u00admin@example.com",  # soft hyphen
        "admin\x00@example.com",
        "admin\t@example.com",
        "\u0430dmin@example.com",  # Cyrillic а + Latin: homoglyph
        "p\u0430ypal@example.com",
        "admin@localhost",
        "admin@example..com",
        "admin@.example.com",
        "admin@example.com.",
        ".admin@example.com",
        "ad..min@example.com",
        "admin.@example.com",
        '"admin"@example.com',
        "admin@[127.0.0.1]",
        "admin@127.0.0.1",
        "admin@-example.com",
        "admin@exa_mple.com",
        "admin@ex!ample.com",
        "a" * 65 + "@example.com",
        "a@" + ".".join(["b" * 60] * 5) + ".com",
        "a@" + "b" * 64 + ".com",
        "x" * 5000,
    ],
)
def test_rejects(raw: str) -> None:
    with pytest.raises(InvalidEmail) as info:
        normalize_email(raw)
    message = str(info.value)
    assert message
    if len(raw.strip()) > 3:
        assert raw.strip() not in message  # never echoes the input


def test_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        normalize_email("nope")


def test_non_string_is_invalid_email() -> None:
    with pytest.raises(InvalidEmail):
        normalize_email(None)  # type: ignore[arg-type]


def test_max_length_boundary() -> None:
    address = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".com"
    assert len(address) == 254
    assert normalize_email(address) == address
    with pytest.raises(InvalidEmail, match="too long"):
        normalize_email(address.replace("d" * 57, "d" * 58))
