"""Cross-message detection: a number split over two or three consecutive messages.

Why: "4111 1111" then "1111 1111" passes a per-message filter although the agent reads the
whole card. ``SplitWindow`` keeps, per chat and sender, the tails of the last two messages --
only while they hold something number-like (a digit, a numeral, a digit word:
``number_like``), at most ``TAIL_CHARS`` each, for at most ``ttl`` seconds, for at most
``max_chats`` chats (least recently used dropped first) -- and
checks each new message together with them. A numeric finding that starts in a previous
message and ends in the new one is reported on the new message: its part in the new message
is hidden completely, the message takes the kind's action, and the ``Decision`` names the
kinds in ``split_kinds`` so the gateway flags it for supervisors. The tails live in memory
only (never logged or stored).

The same window remembers what an agent *asked for*: a message naming a value that is found
by the phrase before it ("请提供您的护照号码", "what is the CVV?", "验证码是多少") without the
value itself. The customer's next message or two are read as the answer: a value right at
their start ("E12345678", "好的，482913") is found as if the phrase stood before it, and takes
its kind's action like any other finding (an ID number masked, a one-time code hidden from the
agent who asked for it). Only what a customer answers is read this way, and only a value with
nothing but a short acknowledgement before it: "验证码收不到？" followed by "我的订单号是
12345678" is no code. A customer's own message that *ends* with such a phrase ("我的护照号码是",
"my number is") opens the same window: the value sent on its own next ("E12345678") is read
with it, so splitting the phrase from the value hides nothing.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace

from .detectors import CONTEXT_RULES, PARTS_RULE
from .detectors.context import ANNOUNCING_FILLER
from .detectors.names import ASKED_CUES
from .detectors.numbers import letter_at, number_like
from .engine import PolicyEngine
from .normalize import fold
from .notices import notice_for
from .phrases import Phrases
from .types import SEVERITY, Decision, Direction, Finding

TAIL_CHARS = 48
"""How much of a previous message is kept: a 19-digit card spelt with separators fits."""
MAX_PARTS = 2
"""Previous messages kept per chat and sender (so a number in three messages is found)."""
SPLIT_KINDS = frozenset({"card", "cn_id", "phone", "iban", "bank_account"})
_JOIN = "\n"
ANSWERS = 2
"""Customer messages after an agent's question read as its answer."""
ASKED: tuple[tuple[str, tuple[str, ...]], ...] = (
    *((rule.kind, rule.triggers) for rule in CONTEXT_RULES),
    ("name", ASKED_CUES),
)
"""What a question may ask for, in order: the kind and the phrases of each context rule (a
passport number, a security code …), then a person's name by the cues that name one."""
_ASKED_KINDS = frozenset(kind for kind, _ in ASKED)
_ASKING: Phrases[tuple[int, ...]] = Phrases(
    (phrase, tuple(k for k, (_, phrases) in enumerate(ASKED) if phrase in phrases))
    for phrase in dict.fromkeys(t for _, phrases in ASKED for t in phrases)
)
"""Every phrase a question may name, each with what it asks for (by index in ``ASKED``).
One automaton pass finds them all; ten regexes, one per rule, took ~28 us on a
66-character English line, which every customer message paid."""
LEAD_IN = re.compile(
    r"[\W_]*+(?:(?:好的|好|嗯|是|为|okay|ok|sure|it's|its|it is|is)[\W_]*+)?", re.IGNORECASE
)
"""What may come before the value in an answer: punctuation and a short acknowledgement."""
ENDING = re.compile(rf"{ANNOUNCING_FILLER}[\W_]*+")
"""What may follow a phrase that ends a customer's message: the words announcing a value."""
ENDING_CHARS = max(len(t) for _, phrases in ASKED for t in phrases) + 8 * 6 + 1
"""How far before a customer's message's trailing punctuation a phrase ending it can start,
and the character before it (its look-behind): the longest phrase, then ``ANNOUNCING_FILLER``
(eight words of six characters at most). Only there is it looked for: every customer message
is read so, and the phrases' regexes over a whole 500-character message took ~140 us."""


class SplitWindow:
    """The rolling per-(chat, sender) window and each chat's open question from an agent;
    thread-safe, bounded in chats and bytes."""

    def __init__(
        self, *, max_chats: int = 10_000, ttl: float = 120.0, clock: Callable[[], float]
    ) -> None:
        self.max_chats = max_chats
        self.ttl = ttl
        self.clock = clock
        self._tails: OrderedDict[tuple[str, str], tuple[float, tuple[str, ...]]] = OrderedDict()
        self._asked: OrderedDict[str, tuple[float, str, int]] = OrderedDict()
        """chat -> (when, the phrase an agent's question named, answers left)."""
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._tails)

    def check(
        self,
        engine: PolicyEngine,
        chat_id: str,
        direction: Direction,
        text: str,
        decision: Decision,
    ) -> Decision:
        """``decision`` for ``text``, extended by numbers completed across messages; then
        remembers the new message's tail (unless it was blocked)."""
        key = (chat_id, direction)
        now = self.clock()
        with self._lock:
            entry = self._tails.pop(key, None)
        parts = entry[1] if entry is not None and now - entry[0] <= self.ttl else ()
        result = decision
        if parts and number_like(text[:TAIL_CHARS]):
            result = self._combined(engine, parts, direction, text, decision)
        if direction == "customer":
            result = self._answered(engine, chat_id, now, text, result)
            # a customer's own phrase, the value held back for the next message ("护照号码")
            if result.action != "block" and (phrase := _named(text, result, ending=True)):
                self._remember_phrase(chat_id, now, phrase)
        elif result.action != "block" and (phrase := _named(text, result, ending=False)):
            self._remember_phrase(chat_id, now, phrase)
        # else "稍等" after a question: the question still stands
        if result.action != "block":
            self._remember(key, now, parts, text)
        return result

    def forget(self, chat_id: str) -> None:
        """Drop a chat's tails (chat closed or erased)."""
        with self._lock:
            for direction in ("customer", "agent"):
                self._tails.pop((chat_id, direction), None)
            self._asked.pop(chat_id, None)

    def _remember_phrase(self, chat_id: str, now: float, phrase: str) -> None:
        """Remember ``phrase`` as the chat's open question: it stands for ``ANSWERS``
        customer messages and ``ttl`` seconds."""
        with self._lock:
            self._asked[chat_id] = (now, phrase, ANSWERS)
            self._asked.move_to_end(chat_id)
            while len(self._asked) > self.max_chats:
                self._asked.popitem(last=False)

    def _answered(
        self, engine: PolicyEngine, chat_id: str, now: float, text: str, decision: Decision
    ) -> Decision:
        """``decision`` extended by the value a customer's answer gives to the agent's
        question (see the module's docstring)."""
        with self._lock:
            entry = self._asked.pop(chat_id, None)
            if entry is None or now - entry[0] > self.ttl:
                return decision
            when, phrase, left = entry
            if left > 1:
                self._asked[chat_id] = (when, phrase, left - 1)
        # The answer without its acknowledgement, after the phrase: a value found right
        # there (where the rule's filler ends) is the answer's.
        lead = LEAD_IN.match(text)
        cut = lead.end() if lead is not None else 0
        prefix = phrase + "："
        shift = cut - len(prefix)
        own = {(f.kind, f.start, f.end) for f in decision.findings}
        answers = []
        for f in engine.findings_of(prefix + text[cut:], "customer", _ASKED_KINDS):
            if f.start != len(prefix):
                continue
            finding = Finding(f.kind, f.start + shift, f.end + shift, f.rule, f.action)
            if (finding.kind, finding.start, finding.end) not in own:
                answers.append(finding)
        if not answers:
            return decision
        with self._lock:
            self._asked.pop(chat_id, None)  # answered
        return _with(engine, decision, "customer", text, answers, split=False)

    def _remember(
        self, key: tuple[str, str], now: float, parts: tuple[str, ...], text: str
    ) -> None:
        tail = text[-TAIL_CHARS:]
        if not number_like(tail):
            return  # nothing number-like at the end: nothing to continue, nothing kept
        with self._lock:
            self._tails[key] = (now, (*parts, tail)[-MAX_PARTS:])
            while len(self._tails) > self.max_chats:
                self._tails.popitem(last=False)

    @staticmethod
    def _combined(
        engine: PolicyEngine,
        parts: tuple[str, ...],
        direction: Direction,
        text: str,
        decision: Decision,
    ) -> Decision:
        prefix = _JOIN.join(parts) + _JOIN
        offset = len(prefix)
        own = {(f.kind, f.start, f.end) for f in decision.findings}
        split: list[Finding] = []
        for f in engine.findings_of(prefix + text, direction, SPLIT_KINDS):
            if f.start < offset < f.end:  # a number running on into this message
                finding = Finding(f.kind, 0, f.end - offset, f.rule + ".split", f.action)
            elif f.rule == PARTS_RULE and f.start >= offset:
                # a part of a number given in two whose other part came before ("尾号5678"
                # then "前面是1380013"); both in this message are its own finding already
                finding = Finding(
                    f.kind, f.start - offset, f.end - offset, f.rule + ".split", f.action
                )
            else:
                continue
            if (finding.kind, finding.start, finding.end) not in own:
                split.append(finding)
        if not split:
            return decision
        return _with(engine, decision, direction, text, split, split=True)


def flag_kinds(decision: Decision) -> list[str] | None:
    """The kinds a supervisors' flag names for ``decision``, ``None`` when nothing flags it:
    a flagged message's kinds; a number completed across messages always alerts, its kinds
    named ``split:<kind>`` too. The gateway flags inspect-mode messages so, and an end
    sends the same as ``emsg.flags`` (the SDK's ends; policy.js ``flags`` in browsers)."""
    if decision.action != "flag" and not decision.split_kinds:
        return None
    return sorted({*decision.kinds, *(f"split:{k}" for k in decision.split_kinds)})


def _named(text: str, decision: Decision, *, ending: bool) -> str | None:
    """The last phrase of a context rule that ``text`` names without a value of its kind
    (``decision`` found none); with ``ending``, only one that ends the message but for
    punctuation and the words announcing a value ("我的护照号码是："), looked for in the
    message's end only (``ENDING_CHARS``).

    A phrase counts as a whole word (no letter a-z on either side), and each rule's
    phrases are read as a regex reads an alternation of them from left to right: at each
    start the longest phrase, then on after its end."""
    view = fold(text)
    start = 0
    if ending:
        end = len(view)
        while end and not view[end - 1].isalnum():  # the trailing [\W_] run of ENDING
            end -= 1
        start = max(0, end - ENDING_CHARS)
    found = {f.kind for f in decision.findings}
    spans: dict[int, list[tuple[int, int]]] = {}
    values = _ASKING.values
    for index, first, stop in _ASKING.find(view, start):
        if letter_at(view, first - 1) or letter_at(view, stop):
            continue
        for rule in values[index]:
            if ASKED[rule][0] not in found:
                spans.setdefault(rule, []).append((first, -stop))
    named: tuple[int, int] | None = None
    for rule in sorted(spans):  # in the rules' order: of two at one start, the first rule's
        rule_spans = spans[rule]
        rule_spans.sort()  # by start, the longest phrase first
        after = -1
        for first, negative_stop in rule_spans:
            if first < after:
                continue  # inside the rule's previous phrase, or a shorter one at its start
            after = -negative_stop
            if ending and ENDING.fullmatch(view, after) is None:
                continue
            if named is None or first > named[0]:
                named = (first, after)
    return None if named is None else view[named[0] : named[1]]


def _with(
    engine: PolicyEngine,
    decision: Decision,
    direction: Direction,
    text: str,
    more: list[Finding],
    *,
    split: bool,
) -> Decision:
    """``decision`` with the findings ``more`` added: the action, the rendered text, the
    kinds and the notice recomputed; ``split``: ``more`` completed numbers across messages
    (supervisors are alerted)."""
    findings = tuple(sorted((*decision.findings, *more), key=lambda f: (f.start, f.end)))
    worst = max(findings, key=lambda f: SEVERITY[f.action])
    action = worst.action
    shown = None if action == "block" else engine.render(text, findings)
    kinds = tuple(sorted({*decision.kinds, *(f.kind for f in more if f.action != "allow")}))
    return replace(
        decision,
        action=action,
        text=shown,
        findings=findings,
        kinds=kinds,
        notice=notice_for(action, worst.kind, direction, text),
        split_kinds=tuple(sorted({f.kind for f in more})) if split else decision.split_kinds,
    )
