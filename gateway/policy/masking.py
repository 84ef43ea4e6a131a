"""Rendering what the recipient sees: masks over the ORIGINAL text.

Styles:

=========  ==============================================================================
``lastN``  every letter/digit hidden except the last N (``last4``: ``**** **** **** 1234``)
``full``   every letter/digit hidden (``last0``); separators and layout stay
``email``  first character of the local part kept, rest of it hidden, domain kept
``firstNlastM``  the first N and last M letters/digits kept (``first3last4``)
``phone``  ``138****5678``: first 3 and last 4 digits kept (last 2 only for short numbers)
``name``   the first letter of each word kept (``张**``, ``J*** S****``)
``address``  the administrative prefix kept (``北京市朝阳区****``), the rest hidden
``keep``   nothing changed (for ``flag`` rules that only alert supervisors)
``redact`` the whole span replaced by ``[redacted]`` (private key blocks)
``defang`` links made non-clickable with their real host visible (``hxxps://x[.]com``)
=========  ==============================================================================

Star styles replace one character with one ``*``, so they never shift offsets: they are applied
first, then the length-changing styles, right to left. A character counts as a letter/digit
when its NORMALISED form has one (full-width ``４`` and ``①`` included), and the visible tail
never shows more than N normalised digits -- so a masked number is never recoverable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from .detectors.address import division_prefix
from .links import defang
from .normalize import fold

_HAN_CHAR = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LAST = re.compile(r"last([0-9])")
_FIRST_LAST = re.compile(r"first([0-9])last([0-9])")
_BRACKET_AT = re.compile(r"\s*[\(\[\{（【]\s*[aAａＡ][tTｔＴ]|\s+[aAａＡ][tTｔＴ]\s|\s*艾特")
"""Where the domain starts in an address whose ``@`` is written otherwise: "(at)", "[at]",
" at ", "艾特" (the local part holds none of them)."""
_ASCII_ALNUM = re.compile("[0-9A-Za-z]")
STAR_STYLES = ("full", "email", "keep", "phone", "name", "address")
SPAN_STYLES = ("redact", "defang")


def is_valid_style(style: str) -> bool:
    """``lastN`` with N in 0..9, or one of the named styles."""
    return (
        style in STAR_STYLES
        or style in SPAN_STYLES
        or bool(_LAST.fullmatch(style))
        or bool(_FIRST_LAST.fullmatch(style))
    )


@dataclass(frozen=True, slots=True)
class Mask:
    """A span of the original text and how to render it."""

    start: int
    end: int
    style: str


@lru_cache(maxsize=8192)
def _weight(ch: str) -> int:
    """Letters/digits one original character contributes once normalised (a pure function of
    one character -- never of a value -- so caching it keeps no personal data around)."""
    return sum(c.isalnum() for c in fold(ch))


def _significance(chars: list[str], start: int, end: int) -> list[int]:
    """Letters/digits each original character contributes once normalised."""
    return [_weight(ch) for ch in chars[start:end]]


def _star(chars: list[str], mask: Mask) -> None:
    style = mask.style
    last = _LAST.fullmatch(style)
    if last is not None or style == "full":
        visible = 0 if last is None else int(last.group(1))
        segment = "".join(chars[mask.start : mask.end])
        if segment.isascii():  # most masked numbers: a letter or digit counts one
            chars[mask.start : mask.end] = _all_but_last_ascii(segment, visible)
        else:
            _star_last(chars, mask, _significance(chars, mask.start, mask.end), visible)
        return
    weights = _significance(chars, mask.start, mask.end)
    if style == "email":
        _star_email(chars, mask, weights)
    elif style == "name":
        _star_name(chars, mask, weights)
    elif style == "address":
        _star_address(chars, mask, weights)
    elif (ends := _FIRST_LAST.fullmatch(style)) is not None or style == "phone":
        head, tail = (3, 4) if ends is None else (int(ends.group(1)), int(ends.group(2)))
        if sum(weights) < head + tail + 3:  # short number: never show most of it
            head, tail = 0, min(tail, 2)
        _star_ends(chars, mask, weights, head, tail)
    else:
        _star_last(chars, mask, weights, 0)


def _star_last(chars: list[str], mask: Mask, weights: list[int], visible: int) -> None:
    """Hide every letter/digit but the last ``visible`` (counted normalised)."""
    shown = 0
    for offset in range(len(weights) - 1, -1, -1):
        w = weights[offset]
        if not w:
            continue
        if shown + w <= visible:
            shown += w
        else:
            visible = shown  # once one char is hidden, hide everything before it too
            chars[mask.start + offset] = "*"


def _all_but_last_ascii(segment: str, visible: int) -> str:
    """``_star_last`` of an ASCII segment, where each letter or digit weighs one and nothing
    else counts: every letter/digit before the last ``visible`` replaced in one regex pass
    instead of a weight per character."""
    cut = len(segment)
    if visible:
        seen = 0
        for i in range(len(segment) - 1, -1, -1):
            if segment[i].isalnum():
                seen += 1
                if seen == visible:
                    cut = i
                    break
        else:
            return segment  # no more than ``visible`` letters/digits: all shown
    return _ASCII_ALNUM.sub("*", segment[:cut]) + segment[cut:]


def _star_ends(chars: list[str], mask: Mask, weights: list[int], head: int, tail: int) -> None:
    """Keep ``head`` leading and ``tail`` trailing letters/digits, hide the ones between."""
    total = sum(weights)
    seen = 0
    for offset, w in enumerate(weights):
        if not w:
            continue
        seen += w
        if seen <= head or seen > total - tail:
            continue
        chars[mask.start + offset] = "*"


def _star_name(chars: list[str], mask: Mask, weights: list[int]) -> None:
    """Keep the first letter of each word (J*** S****); a Chinese name is one word however it
    is spaced (张**, 李 *): a Chinese character after a space is a given name's, not a word's."""
    word_start = kept = False
    for offset, w in enumerate(weights):
        if not w:
            word_start = True
            continue
        ch = chars[mask.start + offset]
        if kept and not (word_start and not _HAN_CHAR.match(ch)):
            chars[mask.start + offset] = "*"
        kept = True
        word_start = False


def _star_address(chars: list[str], mask: Mask, weights: list[int]) -> None:
    """Keep the administrative prefix (province/city/district), hide the rest; an address
    without one keeps nothing but separators."""
    text = "".join(chars[mask.start : mask.end])
    view = fold(text)
    keep = division_prefix(view) if len(view) == len(text) else 0
    for offset in range(keep, len(weights)):
        if weights[offset]:
            chars[mask.start + offset] = "*"


def _star_email(chars: list[str], mask: Mask, weights: list[int]) -> None:
    text = "".join(chars[mask.start : mask.end])
    at = text.find("@")
    if at < 0 and (m := _BRACKET_AT.search(text)) is not None:  # "name(at)example.com"
        at = m.start()
    kept_first = False
    for offset in range(0, at if at > 0 else len(weights)):
        if weights[offset]:
            if kept_first:
                chars[mask.start + offset] = "*"
            kept_first = True


def render(original: str, masks: Iterable[Mask]) -> str:
    """Apply ``masks`` (possibly overlapping) to ``original``.

    Only the stretch the masks cover is taken apart into characters (a card number in a
    500-character message costs its own length, not the message's)."""
    todo = list(masks)
    if not todo:
        return original
    lo = min(mask.start for mask in todo)
    hi = max(mask.end for mask in todo)
    return original[:lo] + _render_part(original[lo:hi], todo, lo) + original[hi:]


def _render_part(part: str, masks: list[Mask], offset: int) -> str:
    """``render`` of ``part``, the original from ``offset`` on, that every mask lies in."""
    chars = list(part)
    spans: list[Mask] = []
    for mask in (Mask(m.start - offset, m.end - offset, m.style) for m in masks):
        if mask.style in SPAN_STYLES:
            spans.append(mask)
        elif mask.style != "keep":
            _star(chars, mask)
    for mask in _merge_spans(spans)[::-1]:
        segment = "".join(chars[mask.start : mask.end])
        replacement = "[redacted]" if mask.style == "redact" else defang(segment)
        chars[mask.start : mask.end] = [replacement]
    return "".join(chars)


def _merge_spans(spans: list[Mask]) -> list[Mask]:
    """Overlapping length-changing masks merge; ``redact`` wins over ``defang``."""
    merged: list[Mask] = []
    for mask in sorted(spans, key=lambda m: (m.start, -m.end)):
        if merged and mask.start < merged[-1].end:
            last = merged[-1]
            style = "redact" if "redact" in (last.style, mask.style) else last.style
            merged[-1] = Mask(last.start, max(last.end, mask.end), style)
        else:
            merged.append(mask)
    return merged
