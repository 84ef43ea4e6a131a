"""Cross-message detection: a number split over two or three consecutive messages.

Why: "4111 1111" then "1111 1111" passes a per-message filter although the agent reads the
whole card. ``SplitWindow`` keeps, per chat and sender, the tails of the last two messages --
only while they end in something number-like, at most ``TAIL_CHARS`` each, for at most
``ttl`` seconds, for at most ``max_chats`` chats (least recently used dropped first) -- and
checks each new message together with them. A numeric finding that starts in a previous
message and ends in the new one is reported on the new message: its part in the new message
is hidden completely, the message takes the kind's action, and the ``Decision`` names the
kinds in ``split_kinds`` so the gateway flags it for supervisors. The tails live in memory
only (never logged or stored).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace

from .detectors.numbers import SEVEN_DIGITS
from .engine import PolicyEngine
from .notices import notice_for
from .types import SEVERITY, Decision, Direction, Finding

TAIL_CHARS = 48
"""How much of a previous message is kept: a 19-digit card spelt with separators fits."""
MAX_PARTS = 2
"""Previous messages kept per chat and sender (so a number in three messages is found)."""
SPLIT_KINDS = frozenset({"card", "cn_id", "phone", "iban", "bank_account"})
_NUMBERISH = re.compile(SEVEN_DIGITS)
_JOIN = "\n"


class SplitWindow:
    """The rolling per-(chat, sender) window; thread-safe, bounded in chats and bytes."""

    def __init__(
        self, *, max_chats: int = 10_000, ttl: float = 120.0, clock: Callable[[], float]
    ) -> None:
        self.max_chats = max_chats
        self.ttl = ttl
        self.clock = clock
        self._tails: OrderedDict[tuple[str, str], tuple[float, tuple[str, ...]]] = OrderedDict()
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
        if parts and _NUMBERISH.search(text[:TAIL_CHARS]) is not None:
            result = self._combined(engine, parts, direction, text, decision)
        if result.action != "block":
            self._remember(key, now, parts, text)
        return result

    def forget(self, chat_id: str) -> None:
        """Drop a chat's tails (chat closed or erased)."""
        with self._lock:
            for direction in ("customer", "agent"):
                self._tails.pop((chat_id, direction), None)

    def _remember(
        self, key: tuple[str, str], now: float, parts: tuple[str, ...], text: str
    ) -> None:
        tail = text[-TAIL_CHARS:]
        if _NUMBERISH.search(tail) is None:
            return  # nothing number-like at the end: nothing to continue, nothing kept
        kept = (*parts, tail)[-MAX_PARTS:] if _NUMBERISH.search(text) else (tail,)
        with self._lock:
            self._tails[key] = (now, kept)
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
            if not f.start < offset < f.end:
                continue
            finding = Finding(f.kind, 0, f.end - offset, f.rule + ".split", f.action)
            if (finding.kind, finding.start, finding.end) not in own:
                split.append(finding)
        if not split:
            return decision
        findings = tuple(sorted((*decision.findings, *split), key=lambda f: (f.start, f.end)))
        worst = max(findings, key=lambda f: SEVERITY[f.action])
        action = worst.action
        shown = None if action == "block" else engine.render(text, findings)
        kinds = tuple(sorted({*decision.kinds, *(f.kind for f in split if f.action != "allow")}))
        return replace(
            decision,
            action=action,
            text=shown,
            findings=findings,
            kinds=kinds,
            notice=notice_for(action, worst.kind, direction, text),
            split_kinds=tuple(sorted({f.kind for f in split})),
        )
