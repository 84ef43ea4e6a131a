"""Every occurrence of a fixed set of phrases in a text, in one pass (Aho-Corasick).

The policy searches three phrase sets per message: the tenant's keywords (thousands of
terms, on the compact view), the detectors' gate phrases, and the 4,000+ names of China's
administrative divisions (addresses). They use ahocorasick-rs, the Python binding of the Rust
``aho-corasick`` crate: on a 500-character chat line it was 2x (keywords, gate) to 45x
(division names: 1.7 us against 78 us) faster than pyahocorasick, whose per-character work
grows with the number of children of a node -- large for Chinese.

The crate searches UTF-8, so a text holding lone surrogates (which the view keeps as they are)
is searched with each surrogate replaced by U+FFFD: one code point for one, so every offset
stays the same, and no phrase contains either.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Generic, TypeVar

from ahocorasick_rs import AhoCorasick

V = TypeVar("V")

_SURROGATES = re.compile("[\ud800-\udfff]")

Match = tuple[int, int, int]
"""(index of the phrase's value in ``values``, start, end) -- end exclusive, in code points."""


class Phrases(Generic[V]):
    """A read-only phrase set with one value per phrase; built once, shared freely."""

    __slots__ = ("_automaton", "values")

    def __init__(self, phrases: Iterable[tuple[str, V]]) -> None:
        """``phrases``: (phrase, value) pairs; empty phrases are ignored (they match nowhere
        useful and the automaton refuses them)."""
        items = [(phrase, value) for phrase, value in phrases if phrase]
        self.values: tuple[V, ...] = tuple(value for _, value in items)
        """The value of each phrase, by the index a ``Match`` carries."""
        self._automaton = AhoCorasick([phrase for phrase, _ in items]) if items else None

    def __len__(self) -> int:
        return len(self.values)

    def find(self, text: str, start: int = 0, end: int | None = None) -> list[Match]:
        """Every occurrence (overlapping ones too) in ``text[start:end]``, by end position,
        with offsets into ``text``."""
        if self._automaton is None:
            return []
        if start or end is not None:
            found = self.find(text[start:end])
            return [(k, s + start, e + start) for k, s, e in found] if start else found
        try:
            return self._automaton.find_matches_as_indexes(text, overlapping=True)
        except UnicodeEncodeError:  # lone surrogates: same length, no phrase holds U+FFFD
            return self._automaton.find_matches_as_indexes(
                _SURROGATES.sub("\ufffd", text), overlapping=True
            )


def union_of(phrases: Phrases[int], text: str) -> int:
    """The OR of the values of the phrases occurring in ``text`` (each phrase once): with
    bit-flag values, which of several things the text can hold, in one automaton pass."""
    values = phrases.values
    found = 0
    for index in {match[0] for match in phrases.find(text)}:
        found |= values[index]
    return found
