"""Digit runs: the shared candidates of every numeric detector (cards, IDs, phones).

A run is digits joined by at most three separator characters (space, dash, dot, brackets),
so ``4111 1111-1111.1111`` and ``4 1 1 1 ...`` are one candidate. Detectors try *windows* of
consecutive digit groups, so a card followed by a CVV, or a phone next to an order number, is
still found. The patterns are possessive: no input makes them backtrack.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

_RUN = re.compile(
    r"\+?+[0-9](?:[0-9]|[ \-.()\u2010-\u2015]{1,3}+[0-9])*+(?:[ \-]?+x(?![a-z0-9]))?+"
)
_GROUP = re.compile(r"[0-9]++x?+")

SEVEN_DIGITS = r"[0-9](?:[ \-.()\u2010-\u2015]{0,3}+[0-9]){6}"
"""Seven digits chained the way ``_RUN`` chains them (at most three separators between two
digits): every card, ID and phone number holds such a chain, so a view without one cannot
yield any of them (the engine's per-message gate)."""

MIN_RUN_DIGITS = 7
"""The shortest number any numeric detector reports (a local phone number)."""

MAX_RUN_DIGITS = 64
"""Runs longer than this are split into independent chunks: no real number is that long, and
it bounds the window search on adversarial input."""


@dataclass(frozen=True, slots=True)
class Window:
    """Consecutive digit groups of a run: their digits and their span in the view."""

    digits: str
    start: int
    end: int
    plus: bool


@dataclass(frozen=True, slots=True)
class NumberRun:
    """One run of digit groups; ``groups`` are (start, end, digits) in view coordinates."""

    start: int
    end: int
    plus: bool
    groups: tuple[tuple[int, int, str], ...]
    digit_count: int = field(init=False, compare=False)
    """How many digits (and trailing x) the run holds."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "digit_count", sum(len(g[2]) for g in self.groups))

    def blocks(self, lo: int, hi: int) -> Iterator[Window]:
        """The whole run and each unbroken digit block, if they hold ``lo``..``hi`` digits."""
        if lo <= self.digit_count <= hi:
            yield Window("".join(g[2] for g in self.groups), self.start, self.end, self.plus)
        if len(self.groups) > 1:
            for k, (start, end, digits) in enumerate(self.groups):
                if lo <= len(digits) <= hi:
                    yield Window(digits, start, end, self.plus and k == 0)

    def windows(self, lo: int, hi: int, first: str = "0123456789") -> Iterator[Window]:
        """Windows of consecutive groups holding ``lo``..``hi`` digits, longest first per start;
        only windows whose first digit is in ``first`` (a cheap issuer/region prefilter)."""
        groups = self.groups
        joined = "".join(g[2] for g in groups)  # window digits are slices of this
        offsets = [0]
        for g in groups:
            offsets.append(offsets[-1] + len(g[2]))
        for i in range(len(groups)):
            if groups[i][2][0] not in first:
                continue
            base = offsets[i]
            found: list[Window] = []
            for j in range(i, len(groups)):
                total = offsets[j + 1] - base
                if total > hi:
                    break
                if total >= lo:
                    found.append(Window(joined[base : offsets[j + 1]], groups[i][0],
                                        groups[j][1], self.plus and i == 0))
            yield from reversed(found)


def find_number_runs(view: str) -> tuple[NumberRun, ...]:
    """All digit runs of the view (cheap: one regex pass, usually finding nothing)."""
    runs: list[NumberRun] = []
    for m in _RUN.finditer(view):
        if m.end() - m.start() < MIN_RUN_DIGITS:
            continue  # prices, dates, quantities: too short to be anything we detect
        plus = m.group().startswith("+")
        chunk: list[tuple[int, int, str]] = []
        count = 0
        for g in _GROUP.finditer(m.group()):
            group = (g.start() + m.start(), g.end() + m.start(), g.group())
            if chunk and count + len(group[2]) > MAX_RUN_DIGITS:
                runs.append(NumberRun(chunk[0][0], chunk[-1][1], plus, tuple(chunk)))
                chunk, count, plus = [], 0, False
            chunk.append(group)
            count += len(group[2])
        if chunk:
            runs.append(NumberRun(chunk[0][0], chunk[-1][1], plus, tuple(chunk)))
    return tuple(runs)


def claim(windows: Iterable[Window], accept: Callable[[Window], bool]) -> Iterator[Window]:
    """Accepted windows that do not overlap an earlier accepted one (left to right)."""
    taken_until = -1
    for w in windows:
        if w.start >= taken_until and accept(w):
            taken_until = w.end
            yield w
