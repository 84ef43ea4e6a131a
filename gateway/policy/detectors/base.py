"""The contract every personal-data detector fulfils, and the per-message scan context.

A detector is small: it names its kinds, says which cheap substring triggers make it worth
running (so lines that cannot contain a match cost one ``in`` test), and yields hits in VIEW
coordinates. Work several detectors share -- finding digit runs -- lives on the context and is
computed at most once per message.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from ..normalize import NormalizedText
from ..phrases import Match
from .numbers import (
    DIGIT_WORD_SET,
    DIGIT_WORDS,
    SEVEN_DIGITS,
    NumberRun,
    find_number_runs,
    holds_digit_word,
)


@dataclass(frozen=True, slots=True)
class Hit:
    """A detector match in VIEW coordinates; ``rule`` names the validation that passed."""

    kind: str
    start: int
    end: int
    rule: str


def mentions(view: str, words: tuple[str, ...]) -> bool:
    """Whether any of ``words`` occurs in ``view`` (substring searches run in C): the cheap
    test before a pattern that would stop at every character one of the words starts with."""
    return any(word in view for word in words)


class ScanContext:
    """One message being scanned: its normalised views plus lazily shared candidates."""

    __slots__ = ("_by_phrase", "_runs", "gate_matches", "text")

    def __init__(self, text: NormalizedText, gate_matches: list[Match] | None = None) -> None:
        self.text = text
        self.gate_matches = gate_matches
        """Where the engine's gate automaton found detectors' gate phrases in the view (its
        one pass over every detector's phrases), or ``None`` when no gate ran: a detector led
        by a phrase reads the spans of its own phrases here instead of searching again."""
        self._runs: tuple[NumberRun, ...] | None = None
        self._by_phrase: dict[str, list[tuple[int, int, int]]] | None = None

    def phrase_spans(self, phrases: frozenset[str]) -> list[tuple[int, int]] | None:
        """The (start, end) of each gate match that is one of ``phrases``, in the
        automaton's order (by end); ``None`` when no gate ran. Half a dozen detectors ask,
        each for its own phrases: the matches are grouped by phrase once, so each asks
        about the few phrases the message holds, not about every match of every detector."""
        if self.gate_matches is None:
            return None
        by_phrase = self._by_phrase
        if by_phrase is None:
            by_phrase = self._by_phrase = {}
            view = self.text.view
            for k, (_, start, end) in enumerate(self.gate_matches):
                by_phrase.setdefault(view[start:end], []).append((k, start, end))
        found = [spans for phrase, spans in by_phrase.items() if phrase in phrases]
        if len(found) == 1:
            return [(start, end) for _, start, end in found[0]]
        return [(start, end) for _, start, end in sorted(m for spans in found for m in spans)]

    @property
    def view(self) -> str:
        """The normalised view detectors match against."""
        return self.text.view

    @property
    def number_runs(self) -> tuple[NumberRun, ...]:
        """Digit runs (with separators) in the view, found once for all numeric detectors.
        Digit words ("one", "yao") are looked for only where the gate found one standing
        alone (the numeric detectors' gate phrases are ``DIGIT_WORDS``): their own search
        is an automaton pass over the view, and most text holds them only inside words."""
        if self._runs is None:
            view = self.text.view
            bidi = self.text.bidi_override
            spans = self.phrase_spans(DIGIT_WORD_SET)
            words = spans is None or holds_digit_word(view, spans)
            self._runs = find_number_runs(view, reversed_too=bidi, words_too=words)
        return self._runs


class Detector(Protocol):
    """A validated personal-data detector (one per family of data)."""

    # Read-only members: a detector declares them as fixed-length tuples (a mutable
    # protocol attribute would have to be exactly ``tuple[str, ...]``).
    @property
    def kinds(self) -> tuple[str, ...]:
        """Finding kinds it can emit; the config checks actions and mask styles against them."""
        ...

    @property
    def triggers(self) -> tuple[str, ...]:
        """Substrings of the view one of which must occur for ``scan`` to run; empty = always."""
        ...

    # Optional, read with getattr by the engine (a detector without them always runs):
    # ``gate_phrases: tuple[str, ...]`` -- substrings of the view, and ``gate_pattern: str`` --
    # a regex; a message holding none of the phrases and no match of the pattern cannot yield
    # a hit, so the engine skips the detector. The engine tests every detector's gate in one
    # Aho-Corasick pass plus one search per distinct pattern.
    @property
    def exclusive(self) -> bool:
        """Whether its hits claim their characters (a contained hit of a later detector is
        dropped); links and keywords overlay instead."""
        ...

    def scan(self, ctx: ScanContext) -> Iterable[Hit]:
        """Yield validated hits in view coordinates."""
        ...


class ValidatedNumberDetector(abc.ABC):
    """Numbers of one kind found in the message's digit runs: a length range, the digits a
    number may start with, and a checksum validator (card numbers, ID numbers). Subclasses
    only declare them; the run walking and claiming is written once here."""

    kinds: tuple[str] = ("",)
    rule = ""
    min_digits = 0
    max_digits = 0
    leading = ""
    triggers = ()
    gate_pattern = SEVEN_DIGITS
    gate_phrases = DIGIT_WORDS
    exclusive = True

    @staticmethod
    @abc.abstractmethod
    def valid(digits: str, /) -> bool:
        """Whether ``digits`` (exactly the number's digits) is a real number of the kind
        (a subclass declares it: ``valid = staticmethod(is_card_number)``)."""

    def scan(self, ctx: ScanContext) -> Iterator[Hit]:
        """Yield the validated numbers, longest first, never overlapping."""
        kind = self.kinds[0]
        for run in ctx.number_runs:
            if run.digit_count < self.min_digits:
                continue
            for w in run.claim(self.min_digits, self.max_digits, self.leading, self.valid):
                yield Hit(kind, w.start, w.end, self.rule)
