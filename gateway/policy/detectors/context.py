"""Context rules: a value is sensitive because of the phrase in front of it.

"your code is 123456", "密码：abc123", "账号 6222 0000 1234 5678": the phrase is matched on the
normalised view (so Traditional 密碼 and full-width colons count), then a short bounded filler,
then the value; only the value is reported. All quantifiers are bounded or possessive.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..phrases import Phrases
from .base import Hit, ScanContext

_SEPARATORS = re.compile(r"[ \-]")


def without_separators(value: str) -> str:
    """A value's digits without the spaces and dashes between its groups ("138 0013-8000")."""
    return _SEPARATORS.sub("", value)


ANNOUNCING_WORDS = r"[\s:：,，.#=\-]|号码|编号|号|是|为|number|num|no|is|was"
ANNOUNCING_FILLER = rf"(?:{ANNOUNCING_WORDS}){{0,8}}+"
"""What may stand between a cue and the number it announces (identity documents, legacy IDs,
QQ/WeChat accounts): punctuation and the words that announce a number ("号码：", "no.",
"number is"), eight at most; any other word ends the match. Longer words first: the
repetition is possessive, so "no" must not win over "number"."""


_JOINED = r"\s{0,3}+(?:or|and|或者|或|和|及|还有|、|/)\s{0,3}+"
"""What joins a second value to the first after one cue. Not a comma: what follows one is as
often something else ("验证码 123456，8888元的订单")."""
_MORE_VALUES = 3
"""Values after the first one a cue may announce."""


@dataclass(frozen=True, slots=True)
class ContextRule:
    """A value recognised by a context phrase, then a little filler, then the value itself."""

    kind: str
    rule: str
    triggers: tuple[str, ...]
    after: re.Pattern[str]
    """The filler and the value, matched where a phrase ends (the end document carries it,
    translated, for the browser engine: ``policy/end.py``)."""
    more: re.Pattern[str]
    """Another value joined to the one before ("call me at A or B", "账号 A 和 B"), matched
    where that one ends."""
    phrases: Phrases[None]
    needs_non_letter: bool = False
    valid: Callable[[str], bool] | None = None
    """A check the value's digits must pass too (a legacy ID's birth date), if any."""
    before: re.Pattern[str] | None = None
    """A value and filler standing *before* one of the phrases instead ("1990年3月5日出生",
    "March 5 is my birthday"), the phrase in a look-ahead: one pass over the message finds
    them all (a search before each phrase took 26 ms on a message of 2,000 of them).
    ``None``: the rule reads what follows a phrase only."""

    def scan(self, view: str, spans: list[tuple[int, int]] | None = None) -> Iterator[Hit]:
        """Yield the value of each phrase not inside a word that a value follows, in order;
        then, for a rule with ``before``, each value standing before a phrase that no value
        found so far overlaps.

        The phrases are found by an automaton pass, or are ``spans`` (where the engine's gate
        pass found them), and the rest is matched from each: a regex led by the alternation
        of the phrases stops at every letter one of them starts with (most letters of English
        text: 9 us on a 500-character line, for "phone" or "exp" in it)."""
        taken = -1
        match = self.after.match
        if spans is None:
            spans = [(start, end) for _, start, end in self.phrases.find(view)]
        hits: list[Hit] = []
        for start, end in spans:
            if start < taken or (start and "a" <= view[start - 1] <= "z"):
                continue
            m = match(view, end)
            if m is None or not self._holds(m.group("value")):
                continue
            taken = m.end("value")
            hits.append(Hit(self.kind, m.start("value"), taken, self.rule))
            for _ in range(_MORE_VALUES):
                m = self.more.match(view, taken)
                if m is None or not self._holds(m.group("value")):
                    break
                taken = m.end("value")
                hits.append(Hit(self.kind, m.start("value"), taken, self.rule))
        if self.before is not None and spans:
            before = self._before(view, hits)
            if before:
                hits.extend(before)
                hits.sort(key=lambda hit: hit.start)
        return iter(hits)

    def _before(self, view: str, hits: list[Hit]) -> list[Hit]:
        """The values standing before a phrase (``before``'s matches, left to right), each
        overlapping none of ``hits`` (the values found after one: left to right, apart)."""
        assert self.before is not None
        found: list[Hit] = []
        k = 0
        for m in self.before.finditer(view):
            first, last = m.span("value")
            while k < len(hits) and hits[k].end <= first:
                k += 1
            if (k == len(hits) or last <= hits[k].start) and self._holds(m.group("value")):
                found.append(Hit(self.kind, first, last, self.rule))
        return found

    def _holds(self, value: str) -> bool:
        """Whether a matched value is one (letters alone are no password; the check)."""
        if self.needs_non_letter and value.isalpha():
            return False
        return self.valid is None or self.valid(without_separators(value))


def context_rule(
    kind: str,
    rule: str,
    phrases: tuple[str, ...],
    filler: str,
    value: str,
    needs_non_letter: bool = False,
    valid: Callable[[str], bool] | None = None,
    before_filler: str | None = None,
) -> ContextRule:
    """Compile a context rule; Latin phrases must start a word ("spin 1234" is no PIN).
    ``before_filler``: what may stand between a value and a phrase after it, for a rule
    whose value may come first (``ContextRule.before``)."""
    after = re.compile(rf"{filler}(?P<value>{value})")
    more = re.compile(rf"{_JOINED}(?P<value>{value})")
    before = None
    if before_filler is not None:
        ahead = not_after_letter(phrases)
        before = re.compile(rf"(?<![0-9a-z])(?P<value>{value}){before_filler}(?={ahead})")
    cues = Phrases((phrase, None) for phrase in phrases)
    return ContextRule(kind, rule, phrases, after, more, cues, needs_non_letter, valid, before)


def not_after_letter(phrases: tuple[str, ...]) -> str:
    """A regex group matching any of ``phrases`` (longest first) not preceded by a letter.

    Same matches as ``(?<![a-z])(?:a|b|…)``, but the look-behind follows each phrase's first
    character: a pattern that starts with a look-behind makes the regex engine try every
    position of the text in Python's matcher, one that starts with literals lets it skip
    ahead in C to the next possible first character (3x faster on a chat line).
    """
    alternatives = (
        re.escape(p[0]) + "(?<![a-z].)" + re.escape(p[1:])
        for p in sorted(phrases, key=len, reverse=True)
    )
    return "(?:" + "|".join(alternatives) + ")"


class ContextRuleDetector:
    """The detector of one context rule (card security codes, legacy IDs, identity
    documents, account numbers): the engine's gate automaton opens it only when one of the
    rule's phrases is in the message."""

    triggers = ()
    exclusive = True

    def __init__(self, rule: ContextRule, gate_phrases: tuple[str, ...] | None = None) -> None:
        """``gate_phrases``: open the detector by these instead of by the rule's phrases,
        when those are in most messages and these are not (a plate's province characters,
        and each of them with a letter after it); it then finds the rule's phrases itself."""
        self.rule = rule
        self.kinds = (rule.kind,)
        self.gate_phrases = rule.triggers if gate_phrases is None else gate_phrases
        self._phrase_set = frozenset(rule.triggers) if gate_phrases is None else None

    def scan(self, ctx: ScanContext) -> Iterator[Hit]:
        """Yield the rule's values (its phrases where the engine's gate found them)."""
        spans = None if self._phrase_set is None else ctx.phrase_spans(self._phrase_set)
        return self.rule.scan(ctx.view, spans)
