"""Keyword lists a tenant uploads as data (never as a server path).

Why: a tenant admin is not trusted with the installation, so a list arrives as text through
the admin API, is parsed and bounded here, and is kept in the store. Nothing a tenant sends is
ever opened as a file. Errors name the list and the line number, never the line's content.

Bounds (so building a policy has a known cost): a list holds at most ``MAX_LIST_BYTES`` of
UTF-8 and ``MAX_LIST_TERMS`` terms; a tenant has at most ``MAX_LISTS`` lists and
``MAX_TENANT_TERMS`` terms in all.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import PolicyConfigError
from .keywords import KeywordRule, parse_keyword_bytes

MAX_LIST_BYTES = 48 * 1024
MAX_LIST_TERMS = 5_000
MAX_LISTS = 20
MAX_TENANT_TERMS = 20_000
LIST_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
"""A list name: lower-case letters, digits, ``_`` and ``-``; it appears in URLs."""


@dataclass(frozen=True, slots=True)
class KeywordList:
    """One parsed, validated list; ``digest`` identifies its exact content."""

    name: str
    text: str
    rules: tuple[KeywordRule, ...]
    digest: str


def check_name(name: str) -> str:
    """The list name, or ``PolicyConfigError`` (the message does not echo the name)."""
    if not LIST_NAME.fullmatch(name):
        raise PolicyConfigError(
            "keyword list name: 1-40 characters of a-z, 0-9, '_' and '-', starting with a "
            "letter or digit"
        )
    return name


def parse_list(name: str, text: str) -> KeywordList:
    """Validate an uploaded list (``term<TAB>category<TAB>action`` lines)."""
    check_name(name)
    data = text.encode("utf-8", "surrogatepass")
    if len(data) > MAX_LIST_BYTES:
        raise PolicyConfigError(f"keyword list {name}: larger than {MAX_LIST_BYTES} bytes")
    if "\x00" in text:
        raise PolicyConfigError(f"keyword list {name}: contains a NUL character")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicyConfigError(f"keyword list {name}: not valid UTF-8 text") from None
    rules = parse_keyword_bytes(data, f"keyword list {name}")
    rules = [KeywordRule(r.term, r.category, r.action, f"list:{name}") for r in rules]
    if len(rules) > MAX_LIST_TERMS:
        raise PolicyConfigError(f"keyword list {name}: more than {MAX_LIST_TERMS} terms")
    digest = hashlib.sha256(data).hexdigest()
    return KeywordList(name, text, tuple(rules), digest)


def check_tenant_totals(lists: Iterable[KeywordList]) -> None:
    """Refuse a set of lists over the per-tenant bounds."""
    lists = list(lists)
    if len(lists) > MAX_LISTS:
        raise PolicyConfigError(f"keyword lists: at most {MAX_LISTS} lists per tenant")
    total = sum(len(k.rules) for k in lists)
    if total > MAX_TENANT_TERMS:
        raise PolicyConfigError(
            f"keyword lists: at most {MAX_TENANT_TERMS} terms per tenant (these hold {total})"
        )


def lists_revision(digests: Iterable[tuple[str, str]]) -> str:
    """One digest over (name, content digest) pairs: stored in the tenant's settings so every
    node sees that the lists changed and rebuilds the engine."""
    h = hashlib.sha256()
    for name, digest in sorted(digests):
        h.update(f"{name}\x00{digest}\x00".encode())
    return h.hexdigest()
