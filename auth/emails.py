"""Canonical e-mail addresses for agent accounts.

An e-mail address is the agent's login name, so two spellings of one address must
map to one account, and look-alike spellings must not sneak in as a second account.
:func:`normalize_email` produces that one canonical form, deterministically:

1. NFKC: compatibility forms fold to their plain equivalents (full-width
   ``ａｌｉｃｅ＠ｅｘａｍｐｌｅ．ｃｏｍ`` becomes ``alice@example.com``; the ideographic
   full stop ``。`` is treated as a dot in the domain, as IDNA does);
2. surrounding whitespace is stripped, then the whole address is case-folded
   (``Alice@Example.COM`` and ``alice@example.com`` are one account; this is
   stricter than RFC 5321, which lets the local part be case-sensitive, but no
   mainstream provider relies on that);
3. the shape is checked, and anything invisible or ambiguous is *rejected* rather
   than silently removed: control and format characters (zero-width spaces and
   joiners, bidi overrides, soft hyphens), inner whitespace, quoting and
   comments, and local parts that mix Latin, Greek and Cyrillic letters (the
   classic homoglyph trick: a Cyrillic ``а`` in ``аdmin``). Other scripts, alone or
   in combinations such as Han + Kana, are allowed (SMTPUTF8 addresses);
4. internationalised domain labels are converted to punycode (``xn--…``), so the
   stored form is ASCII on the right of the ``@``.

Errors are :class:`InvalidEmail` whose message is safe to show to the user; it never
echoes the input back.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["MAX_EMAIL_LENGTH", "MAX_LOCAL_LENGTH", "InvalidEmail", "normalize_email"]

MAX_EMAIL_LENGTH = 254
"""RFC 5321's limit on a forward path, minus the angle brackets."""

MAX_LOCAL_LENGTH = 64
"""RFC 5321's limit on the local part (counted in UTF-8 bytes)."""

_MAX_RAW_LENGTH = 1024  # refuse to even normalise absurd inputs

_DOT_LOOKALIKES = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
_FORBIDDEN_LOCAL = frozenset('"(),:;<>[]\\@')
_ASCII_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_CONFUSABLE_SCRIPTS = frozenset({"LATIN", "GREEK", "CYRILLIC"})


class InvalidEmail(ValueError):
    """The input is not an e-mail address we accept; ``str(exc)`` is user-safe."""


def normalize_email(raw: str) -> str:
    """Return the canonical form of ``raw`` or raise :class:`InvalidEmail`.

    The result is what the gateway stores and compares: equal addresses (in the
    sense described in the module docstring) give equal strings.
    """
    if not isinstance(raw, str):
        raise InvalidEmail("Enter an e-mail address.")
    if len(raw) > _MAX_RAW_LENGTH:
        raise InvalidEmail("That e-mail address is too long.")
    text = unicodedata.normalize("NFKC", raw).strip()
    text = unicodedata.normalize("NFKC", text.casefold())
    if not text:
        raise InvalidEmail("Enter an e-mail address.")
    for ch in text:
        if ch.isspace():
            raise InvalidEmail("An e-mail address cannot contain spaces.")
        if unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}:
            raise InvalidEmail("That e-mail address contains invisible or control characters.")
    if text.count("@") != 1:
        raise InvalidEmail("An e-mail address has exactly one @ sign.")
    local, domain = text.split("@")
    _check_local(local)
    ascii_domain = _to_ascii_domain(domain.translate(_DOT_LOOKALIKES))
    address = f"{local}@{ascii_domain}"
    if len(address.encode("utf-8")) > MAX_EMAIL_LENGTH:
        raise InvalidEmail("That e-mail address is too long.")
    return address


def _check_local(local: str) -> None:
    if not local:
        raise InvalidEmail("The part before the @ is missing.")
    if len(local.encode("utf-8")) > MAX_LOCAL_LENGTH:
        raise InvalidEmail("The part before the @ is too long.")
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise InvalidEmail("Dots in an e-mail address cannot be first, last or doubled.")
    if any(ch in _FORBIDDEN_LOCAL for ch in local):
        raise InvalidEmail("The part before the @ contains characters we do not accept.")
    scripts = {_script_of(ch) for ch in local if ch.isalpha()}
    if len(scripts & _CONFUSABLE_SCRIPTS) > 1:
        raise InvalidEmail(
            "The part before the @ mixes alphabets (for example Latin and Cyrillic)."
        )


def _script_of(ch: str) -> str:
    """Coarse script of a letter: the first word of its Unicode name."""
    name = unicodedata.name(ch, "")
    return name.split(" ", 1)[0] if name else "UNKNOWN"


def _to_ascii_domain(domain: str) -> str:
    if not domain:
        raise InvalidEmail("The part after the @ is missing.")
    labels = domain.split(".")
    if len(labels) < 2:
        raise InvalidEmail("The domain needs a dot, as in example.com.")
    out = []
    for label in labels:
        if not label:
            raise InvalidEmail("The domain has an empty part (doubled dot, or a dot at an end).")
        if label.isascii():
            ascii_label = label
        else:
            if not all(unicodedata.category(ch)[0] in "LMN" or ch == "-" for ch in label):
                raise InvalidEmail("The domain contains characters we do not accept.")
            try:
                ascii_label = "xn--" + label.encode("punycode").decode("ascii")
            except UnicodeError:
                raise InvalidEmail("The domain contains characters we do not accept.") from None
        if not _ASCII_LABEL.match(ascii_label):
            raise InvalidEmail("The domain contains characters we do not accept.")
        out.append(ascii_label)
    if out[-1].isdigit():
        raise InvalidEmail("The domain must be a name, not an IP address.")
    return ".".join(out)
