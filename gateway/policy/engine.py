"""The policy pass every message takes: normalise -> keywords -> personal data -> links.

``PolicyEngine`` compiles a tenant's configuration once (automaton, detectors) and then
``evaluate`` is a pure function of (text, direction): no I/O, no shared mutable state, safe to
call from any thread or task. The live pipeline and the admin's "test a message" endpoint call
the same ``evaluate``, so what admins see is what traffic gets.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .config import PolicyConfig
from .detectors import Detector, Hit, ScanContext, default_detectors
from .errors import PolicyConfigError
from .keywords import BUILTIN_PATH, KeywordMatcher, KeywordRule, load_keyword_file
from .links import LinkDetector
from .masking import Mask, render
from .normalize import NormalizedText, tables
from .notices import notice_for
from .types import DIRECTIONS, SEVERITY, Action, Decision, Direction, Finding

MAX_TEXT = 1_000_000
"""Longer input is not scanned piecemeal (a split could hide a match): it is blocked. The
gateway's size limits stop such messages long before this."""


@dataclass(frozen=True, slots=True)
class _Candidate:
    hit: Hit
    start: int
    end: int
    exclusive: bool
    fixed_action: Action | None = None  # a keyword term's own action


def _contained(claimed: list[tuple[int, int]], start: int, end: int) -> bool:
    """Whether [start, end) lies inside a claimed span. Claimed spans barely overlap, so the
    few spans starting at or before ``start`` are all that need looking at (bounded work)."""
    k = bisect.bisect_right(claimed, (start, MAX_TEXT + 1))
    for j in range(k - 1, max(k - 9, -1), -1):
        if claimed[j][1] >= end:
            return True
    return False


class PolicyEngine:
    """A tenant's compiled policy. Build once (cheap to share), call ``evaluate`` per message."""

    def __init__(self, config: PolicyConfig | None = None,
                 detectors: Iterable[Detector] | None = None) -> None:
        self.config = config or PolicyConfig()
        tables()  # build the normalisation table now, not on the first message
        rules: list[KeywordRule] = []
        if self.config.builtin_keywords:
            rules.extend(load_keyword_file(BUILTIN_PATH))
        for path in self.config.keyword_files:
            rules.extend(load_keyword_file(path))
        rules.extend(self.config.keywords)
        self.keywords = KeywordMatcher(rules)
        base = tuple(detectors) if detectors is not None else default_detectors(
            self.config.phone_regions)
        self.detectors: tuple[Detector, ...] = (
            *base, LinkDetector(self.config.allowed_link_domains))

    def evaluate(self, text: str, direction: Direction) -> Decision:
        """Decide what happens to ``text`` sent by ``direction``; never raises on odd text."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be 'customer' or 'agent', not {direction!r}")
        if not isinstance(text, str):
            raise TypeError("text must be str")
        if len(text) > MAX_TEXT:
            finding = Finding("oversize", 0, len(text), "size.max_text", "block")
            return Decision("block", None, (finding,), notice_for("block", "oversize",
                                                                   direction, text[:200]),
                            ("oversize",))
        normalized = NormalizedText(text)
        candidates = self._candidates(normalized)
        findings = [self._finding(c, direction) for c in candidates]
        if not findings:
            return Decision("allow", text)
        findings.sort(key=lambda f: (f.start, f.end, f.kind))
        worst = max(findings, key=lambda f: SEVERITY[f.action])
        action = worst.action
        shown = None
        if action != "block":
            masks = [Mask(f.start, f.end, self.config.mask_for(f.kind))
                     for f in findings if f.action in ("mask", "flag")]
            shown = render(text, masks) if masks else text
        kinds = tuple(sorted({f.kind for f in findings if f.action != "allow"}))
        notice = notice_for(action, worst.kind, direction, text)
        return Decision(action, shown, tuple(findings), notice, kinds)

    def _candidates(self, normalized: NormalizedText) -> list[_Candidate]:
        found: list[_Candidate] = []
        for kw in self.keywords.scan(normalized):
            start, end = normalized.span_to_original(kw.start, kw.end)
            hit = Hit(kw.rule.category, kw.start, kw.end, f"keyword:{kw.rule.term}")
            found.append(_Candidate(hit, start, end, False, kw.rule.action))
        ctx = ScanContext(normalized)
        view = normalized.view
        claimed: list[tuple[int, int]] = []  # sorted (start, end) of exclusive hits
        for detector in self.detectors:
            if detector.triggers and not any(t in view for t in detector.triggers):
                continue
            for hit in detector.scan(ctx):
                start, end = normalized.span_to_original(hit.start, hit.end)
                cand = _Candidate(hit, start, end, detector.exclusive)
                if _contained(claimed, start, end):
                    continue  # inside something a higher-priority detector validated
                if cand.exclusive:
                    bisect.insort(claimed, (start, end))
                found.append(cand)
        return found

    def _finding(self, cand: _Candidate, direction: Direction) -> Finding:
        hit = cand.hit
        action = cand.fixed_action or self.config.action_for(hit.kind, direction)
        return Finding(hit.kind, cand.start, cand.end, hit.rule, action)

    @staticmethod
    def as_dict(decision: Decision) -> dict[str, Any]:
        """The JSON body of ``POST /api/policy/test``."""
        return {
            "action": decision.action,
            "text": decision.text,
            "findings": [
                {"kind": f.kind, "start": f.start, "end": f.end, "rule": f.rule,
                 "action": f.action}
                for f in decision.findings
            ],
        }


__all__ = ["PolicyConfigError", "PolicyEngine"]
