"""Links: find them, judge their host, and defang them for display.

Agents may only link to the tenant's allowed domains (a compromised agent account must not be
able to phish customers); customers' links reach agents defanged (``hxxps://example[.]com/x``)
with the REAL host visible, so nobody clicks by accident and ``https://bank.com@evil.com``
shows ``evil[.]com``. Hosts in punycode or mixing scripts (Cyrillic ``а`` in ``pаypal.com``) are
homoglyph suspects and get their own kind, ``link_homoglyph``.

Detection runs on the normalised view (so full-width ``ｈｔｔｐｓ：／／`` is caught), but the host
is judged from the ORIGINAL characters: the view strips accents, which would make
``pàypal.com`` look like ``paypal.com``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from urllib.parse import urlsplit

from .detectors.base import Hit, ScanContext

_TLDS = (
    "com|net|org|info|biz|io|co|me|cn|uk|de|jp|ru|fr|it|nl|es|eu|us|ca|au|in|br|hk|tw|sg|kr|"
    "xyz|top|app|dev|ai|tk|ml|ga|cf|gq|shop|site|online|club|vip|cc|tv|ly|gl|link|click|live|"
    "store|tech|pro|cloud|icu|work|asia|mobi|name|today|support|help|services|bank|finance"
)
_LABEL_RANGES = (
    ("a", "z"),
    ("0", "9"),
    ("\u00c0", "\u024f"),
    ("\u0370", "\u03ff"),
    ("\u0400", "\u04ff"),
)
"""What a bare domain's labels are made of: ASCII letters and digits, Latin with accents,
Greek, Cyrillic (the scripts of homoglyph hosts)."""
_LABEL_CHARS = "".join(f"{lo}-{hi}" for lo, hi in _LABEL_RANGES)
_LABEL = rf"[{_LABEL_CHARS}](?:[{_LABEL_CHARS}\-]{{0,62}}+)"
_STOP = r"\s<>\"'`，。、；：！？「」『』（）【】《》"
URL = re.compile(
    rf"(?:https?|ftp)://[^{_STOP}]{{1,4096}}+"
    rf"|(?<![{_LABEL_CHARS}@.\-/])(?:{_LABEL}\.)+(?:{_TLDS})(?![{_LABEL_CHARS}\-])"
    rf"(?::[0-9]{{1,5}}+)?+(?:[/?#][^{_STOP}]{{0,4096}}+)?+"
)
_TRIGGERS = ("://", ".")
_GATE_PHRASES = ("://", *("." + tld for tld in _TLDS.split("|")))
"""Inside every ``URL`` match: the scheme separator or the dot before a known TLD."""
_GATE_SET = frozenset(_GATE_PHRASES)
_DOMAIN_CHARS = frozenset(
    ".-" + "".join(chr(c) for lo, hi in _LABEL_RANGES for c in range(ord(lo), ord(hi) + 1))
)
"""What a bare domain of ``URL`` is made of: its label characters and dots (and hyphens)."""
TRAILING = ".,;:!?)]}'\"*"
"""Characters a link does not end with (the sentence's punctuation after it)."""
MIN_LINK_CHARS = 4
"""Fewer characters (after the trailing ones) are no link."""
LOOKALIKE_SCRIPTS = frozenset({"LATIN", "CYRILLIC", "GREEK", "ARMENIAN", "ascii"})
"""Scripts whose letters pass for Latin ones: a host label of any of them but ASCII alone is
a homoglyph suspect."""


def host_of(url: str) -> str:
    """The real host of a URL (or bare domain) as a browser would resolve it, lower case."""
    text = unicodedata.normalize("NFKC", url).replace("\u3002", ".")
    if "://" not in text:
        text = "http://" + text
    try:
        host = urlsplit(text).hostname or ""
    except ValueError:
        return ""
    return host.rstrip(".").casefold()


def script_of(ch: str) -> str:
    """The script a host's character is judged by: ``ascii``, else the first word of its
    Unicode name (``LATIN``, ``CYRILLIC``, ``CJK`` ...). The end document carries it for
    every other letter and digit (``policy/end.py``)."""
    if ch.isascii() or ch == "-":
        return "ascii"
    return unicodedata.name(ch, "").split(" ", 1)[0]


def is_homoglyph_host(host: str) -> bool:
    """Punycode labels, mixed scripts in a label, or Latin-lookalike scripts in a host."""
    for label in host.split("."):
        if label.startswith("xn--"):
            return True
        if label.isascii():
            continue
        scripts = {script_of(c) for c in label if c.isalnum()}
        if len(scripts) > 1 or scripts & LOOKALIKE_SCRIPTS:
            return True
    return False


def display_host(host: str) -> str:
    """The host as shown after defanging: ASCII (punycode) when it is a homoglyph suspect."""
    if is_homoglyph_host(host):
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            host = host.encode("ascii", "backslashreplace").decode("ascii")
    return host.replace(".", "[.]")


def defang(url: str) -> str:
    """``https://user@example.com/p`` -> ``hxxps://example[.]com/p`` (real host visible)."""
    text = unicodedata.normalize("NFKC", url)
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    hostport = authority.rpartition("@")[2]
    host, colon, port = hostport.partition(":")
    shown = display_host(host_of(host) or host) + (colon + port if port.isdigit() else "")
    prefix = scheme.lower().replace("t", "x").replace("f", "x") + "://" if scheme else ""
    return prefix + shown + tail


def allowed_hosts(domains: Iterable[str]) -> tuple[str, ...]:
    """The hosts of a tenant's allowed link domains as links' hosts are compared with them
    (the end document carries them so)."""
    return tuple(sorted({host_of(d) or d.strip().lower() for d in domains}))


def _domain_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    return any(host == d or host.endswith("." + d) for d in allowed)


class LinkDetector:
    """Links, judged against the tenant's allowed domains."""

    kinds = ("link", "link_external", "link_homoglyph")
    triggers = _TRIGGERS
    gate_phrases = _GATE_PHRASES
    exclusive = False

    def __init__(self, allowed_domains: Iterable[str] = ()) -> None:
        self.allowed = allowed_hosts(allowed_domains)

    def scan(self, ctx: ScanContext) -> Iterator[Hit]:
        """Yield one hit per link; its kind says whether the host is allowed or suspect."""
        text = ctx.text
        for m in _links_in(ctx):
            start, end = m.start(), m.end()
            while end > start and ctx.view[end - 1] in TRAILING:
                end -= 1
            if end - start < MIN_LINK_CHARS:
                continue
            ostart, oend = text.span_to_original(start, end)
            host = host_of(text.original[ostart:oend])
            if not host:
                continue
            if is_homoglyph_host(host):
                kind, rule = "link_homoglyph", "link.homoglyph"
            elif _domain_allowed(host, self.allowed):
                kind, rule = "link", "link.allowed_domain"
            else:
                kind, rule = "link_external", "link.external_domain"
            yield Hit(kind, start, end, rule)


def _links_in(ctx: ScanContext) -> Iterator[re.Match[str]]:
    """``URL.finditer`` over the view, trying ``URL`` only where a match can start: a
    scheme just before each "://" the engine's gate found, and the start of the domain
    holding each ".<tld>" it found. Searching at large stops at every letter of the
    message (7-10 us on a 500-character line that opens the gate with an e-mail's ".com").

    Exact: every match holds one of the gate's phrases; a bare domain starts where its run
    of domain characters does (its look-behind refuses a domain character, "@", "/" before
    it), so the candidates, tried in order from where the last match ended, give the
    leftmost match each time, as ``finditer`` does."""
    spans = ctx.phrase_spans(_GATE_SET)
    view = ctx.view
    if spans is None:
        yield from URL.finditer(view)
        return
    starts: set[int] = set()
    previous = run = -1  # the last phrase's start, and where its domain starts
    for start in sorted({start for start, _ in spans}):
        if view[start] == ":":
            starts.update(s for s in (start - 5, start - 4, start - 3) if s >= 0)  # https…
            continue
        domain = start
        while domain > 0 and view[domain - 1] in _DOMAIN_CHARS:
            domain -= 1
            if domain == previous:  # the domain of the phrase before: walked already
                domain = run
                break
        previous, run = start, domain
        starts.add(domain)
    pos = 0
    for start in sorted(starts):
        if start < pos:
            continue
        m = URL.match(view, start)
        if m is not None:
            yield m
            pos = m.end()
