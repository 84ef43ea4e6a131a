"""The policy pass every message takes: normalise -> keywords -> personal data -> links.

``PolicyEngine`` compiles a tenant's configuration once (automaton, detectors) and then
``evaluate`` is a pure function of (text, direction): no I/O, no shared mutable state, safe to
call from any thread or task. The live pipeline and the admin's "test a message" endpoint call
the same ``evaluate``, so what admins see is what traffic gets.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .config import AUDIENCE_MASKS, PolicyConfig
from .detectors import HIDDEN_RULES, Detector, Hit, ScanContext, default_detectors
from .errors import PolicyConfigError
from .keywords import KeywordMatcher, KeywordRule, builtin_rules
from .links import LinkDetector
from .masking import Mask, render
from .normalize import NormalizedText, has_bidi_override, tables
from .notices import notice_for
from .phrases import Match, Phrases
from .types import DIRECTIONS, SEVERITY, Action, Decision, Direction, Finding

MAX_TEXT = 1_000_000
"""Longer input is not scanned piecemeal (a split could hide a match): it is blocked. The
gateway's size limits stop such messages long before this."""


_NUMERIC_KINDS = frozenset({"card", "cn_id", "phone", "bank_account"})


def _obfuscated(span: str) -> bool:
    """Whether a numeric finding was written with anything but digits and separators (an ID's
    check character ``X`` aside)."""
    return any((c.isalpha() and c not in "xX") or c in "&%|" for c in span)


@dataclass(frozen=True, slots=True)
class _Candidate:
    hit: Hit
    start: int
    end: int
    exclusive: bool
    fixed_action: Action | None = None  # a keyword term's own action


_Gated = tuple[int, Detector, tuple[str, ...], bool]
"""(gate bit, detector, triggers, exclusive) of one detector, in the order they run."""


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

    def __init__(
        self,
        config: PolicyConfig | None = None,
        detectors: Iterable[Detector] | None = None,
        extra_rules: Iterable[KeywordRule] = (),
    ) -> None:
        """``extra_rules``: operator-file and uploaded-list terms (read by the registry; the
        engine itself never opens a file a tenant could name)."""
        self.config = config or PolicyConfig()
        tables()  # build the normalisation table now, not on the first message
        rules: list[KeywordRule] = []
        if self.config.builtin_keywords:
            rules.extend(builtin_rules(self.config.builtin_categories))
        rules.extend(extra_rules)
        rules.extend(self.config.keywords)
        self.rules: tuple[KeywordRule, ...] = tuple(rules)
        """Every keyword rule the engine matches (built-in, lists, inline), in order."""
        self.keywords = KeywordMatcher(rules)
        base = (
            tuple(detectors)
            if detectors is not None
            else default_detectors(self.config.phone_regions)
        )
        self.detectors: tuple[Detector, ...] = (
            *base,
            LinkDetector(self.config.allowed_link_domains),
        )
        self._compile_gates()
        # Per-direction action of every known kind/category, so a finding costs a dict lookup.
        kinds = {k for d in self.detectors for k in d.kinds} | set(self.config.actions)
        kinds |= {r.category for r in rules}
        self._actions: dict[str, dict[str, Action]] = {
            direction: {k: self.config.action_for(k, direction) for k in kinds}
            for direction in DIRECTIONS
        }
        self.known_kinds: frozenset[str] = frozenset(kinds)
        """Every finding kind and keyword category this policy can report."""

    def _compile_gates(self) -> None:
        """One Aho-Corasick automaton over every detector's ``gate_phrases`` and one regex per
        distinct ``gate_pattern``: per message they say which detectors can possibly match, so
        a typical chat line costs a few C-level scans instead of one Python call per detector.
        A gate is a necessary condition only; the detector still does all of its own checks."""
        phrases: dict[str, int] = {}
        patterns: dict[str, int] = {}
        always = 0
        for i, detector in enumerate(self.detectors):
            bit = 1 << i
            gate_phrases = tuple(getattr(detector, "gate_phrases", ()) or ())
            gate_pattern = getattr(detector, "gate_pattern", None)
            if not gate_phrases and not gate_pattern:
                always |= bit
                continue
            for phrase in gate_phrases:
                phrases[phrase] = phrases.get(phrase, 0) | bit
            if gate_pattern:
                patterns[gate_pattern] = patterns.get(gate_pattern, 0) | bit
        self._gate_always = always
        self._gate_phrases = Phrases(phrases.items())
        self._gate_patterns = tuple((re.compile(p), bits) for p, bits in patterns.items())
        self._gated: tuple[_Gated, ...] = tuple(
            (1 << i, d, tuple(d.triggers), d.exclusive) for i, d in enumerate(self.detectors)
        )
        self._gated_for: dict[frozenset[str], tuple[_Gated, ...]] = {}  # see findings_of

    def _gate(self, view: str) -> tuple[int, list[Match]]:
        """Bitmask of the detectors (by index) worth running on ``view``: the phrases first
        (one automaton pass), then only the patterns of detectors still closed; and the
        phrases' matches, which detectors led by a phrase read instead of searching again."""
        matches = self._gate_phrases.find(view)
        mask = self._gate_always
        values = self._gate_phrases.values
        for index, _, _ in matches:
            mask |= values[index]
        for pattern, bits in self._gate_patterns:
            if mask & bits != bits and pattern.search(view) is not None:
                mask |= bits
        return mask, matches

    def evaluate(self, text: str, direction: Direction) -> Decision:
        """Decide what happens to ``text`` sent by ``direction``; never raises on odd text."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be 'customer' or 'agent', not {direction!r}")
        if not isinstance(text, str):
            raise TypeError("text must be str")
        if len(text) > MAX_TEXT:
            finding = Finding("oversize", 0, len(text), "size.max_text", "block")
            return Decision(
                "block",
                None,
                (finding,),
                notice_for("block", "oversize", direction, text[:200]),
                ("oversize",),
            )
        normalized = NormalizedText(text)
        candidates = self._keyword_candidates(normalized)
        candidates.extend(self._detector_candidates(normalized, self._gated))
        if not candidates:
            return Decision("allow", text)
        findings = self._findings(candidates, direction)
        return self._decide(text, findings, direction, normalized.bidi_override)

    def findings_of(self, text: str, direction: Direction, kinds: frozenset[str]) -> list[Finding]:
        """The findings of the detector ``kinds`` that :meth:`evaluate` makes in ``text``
        (sorted), found without the keyword scan and without the detectors that can neither
        make one nor hide one: for a second look that asks about some kinds only (numbers
        split across messages, ``split.py``), at a fraction of a full pass.

        Exact: a finding is dropped only inside an earlier *exclusive* detector's hit, so
        the detectors emitting ``kinds`` plus the exclusive ones before them decide them."""
        if len(text) > MAX_TEXT:
            return []
        gated = self._gated_for.get(kinds)
        if gated is None:
            last = max(
                (k for k, d in enumerate(self.detectors) if set(d.kinds) & kinds), default=-1
            )
            gated = tuple(
                g
                for k, g in enumerate(self._gated)
                if k <= last and (set(g[1].kinds) & kinds or g[3])
            )
            self._gated_for[kinds] = gated  # the same value whichever thread stores it
        candidates = [
            c for c in self._detector_candidates(NormalizedText(text), gated) if c.hit.kind in kinds
        ]
        return self._findings(candidates, direction)

    def _findings(self, candidates: list[_Candidate], direction: Direction) -> list[Finding]:
        """The candidates as findings with ``direction``'s actions, in text order."""
        actions = self._actions[direction]
        findings = []
        for cand in candidates:
            hit = cand.hit
            action = (
                cand.fixed_action
                or actions.get(hit.kind)
                or self.config.action_for(hit.kind, direction)
            )
            findings.append(Finding(hit.kind, cand.start, cand.end, hit.rule, action))
        findings.sort(key=lambda f: (f.start, f.end, f.kind))
        return findings

    def without(
        self, text: str, decision: Decision, kinds: frozenset[str], direction: Direction
    ) -> Decision:
        """``decision`` as if findings of ``kinds`` had not been made: for fields where a
        kind is what the field is for (a person's own name in a display-name field)."""
        kept = [f for f in decision.findings if f.kind not in kinds]
        if len(kept) == len(decision.findings):
            return decision
        return self._decide(text, kept, direction)

    def _decide(
        self,
        text: str,
        findings: list[Finding],
        direction: Direction,
        bidi: bool | None = None,
    ) -> Decision:
        """The decision ``findings`` (sorted) make: the worst action wins. ``bidi``: whether
        ``text`` holds a bidi override, when known."""
        if not findings:
            return Decision("allow", text)
        worst = max(findings, key=lambda f: SEVERITY[f.action])
        action = worst.action
        shown = None if action == "block" else self.render(text, findings, bidi)
        kinds = tuple(sorted({f.kind for f in findings if f.action != "allow"}))
        notice = notice_for(action, worst.kind, direction, text)
        return Decision(action, shown, tuple(findings), notice, kinds)

    def render(self, text: str, findings: Iterable[Finding], bidi: bool | None = None) -> str:
        """What the recipient sees of ``text`` given its findings (mask and flag findings
        masked in their kind's style; ``.split`` findings -- the part of a number completed
        across messages -- hidden completely). ``bidi``: whether ``text`` holds a bidi
        override, when the caller knows."""
        if bidi is None:
            bidi = has_bidi_override(text)
        masks = [
            Mask(
                f.start,
                f.end,
                "full" if f.rule.endswith(".split") else self._style(text, f, bidi=bidi),
            )
            for f in findings
            if f.action in ("mask", "flag")
        ]
        return render(text, masks) if masks else text

    def for_audience(self, original: str, decision: Decision, audience: str) -> str | None:
        """What ``audience`` (``plugin``, ``export``) gets of a message: everything the
        recipient sees masked stays masked, and findings the tenant's audience table marks
        ``mask`` (phones ``138****5678``, e-mails ``z***@example.com``, names, addresses by
        default) or ``drop`` are hidden too. ``None`` when the message was blocked."""
        if decision.text is None:
            return None
        masks: list[Mask] = []
        bidi = has_bidi_override(original)
        for f in decision.findings:
            rule = self.config.audience_rule(f.kind, audience)
            if rule == "drop":
                masks.append(Mask(f.start, f.end, "redact"))
            elif f.action in ("mask", "flag") and self.config.mask_for(f.kind) != "keep":
                # already masked for the recipient: that mask stays (never less hidden)
                masks.append(
                    Mask(
                        f.start,
                        f.end,
                        "full"
                        if f.rule.endswith(".split")
                        else self._style(original, f, bidi=bidi),
                    )
                )
            elif rule == "mask":
                masks.append(Mask(f.start, f.end, self._style(original, f, audience, bidi)))
        return render(original, masks) if masks else decision.text

    def mask_field(self, kind: str, value: str, audience: str) -> str | None:
        """A typed field (a profile's ``name`` or ``email``) as ``audience`` gets it: masked
        whole with the kind's audience style when the table says ``mask``, ``None`` for
        ``drop``. (The value has already been through ``evaluate`` when it was received.)"""
        rule = self.config.audience_rule(kind, audience)
        if rule == "drop":
            return None
        if rule == "mask" and value:
            return render(value, [Mask(0, len(value), AUDIENCE_MASKS.get(kind, "full"))])
        return value

    def _style(
        self, text: str, finding: Finding, audience: str | None = None, bidi: bool = False
    ) -> str:
        """The finding's mask style; a number spelt to dodge the filter (words, numerals,
        homoglyphs, escapes) is hidden completely -- its "last 4" would be words or
        escapes that give the number away."""
        style = self.config.mask_for(finding.kind)
        if audience is not None:
            style = AUDIENCE_MASKS.get(finding.kind, style)
            if style == "keep":
                style = "full"
        if style != "keep" and finding.rule in HIDDEN_RULES:
            return "full"  # a security code, an expiry date: any "last N" shows them
        if (
            finding.kind in _NUMERIC_KINDS
            and style != "keep"
            and (bidi or _obfuscated(text[finding.start : finding.end]))
        ):
            return "full"
        return style

    def _keyword_candidates(self, normalized: NormalizedText) -> list[_Candidate]:
        found: list[_Candidate] = []
        span = normalized.span_to_original
        for kw in self.keywords.find(normalized):
            start, end = span(kw.start, kw.end)
            hit = Hit(kw.rule.category, kw.start, kw.end, f"keyword:{kw.rule.term}")
            found.append(_Candidate(hit, start, end, False, kw.rule.action))
        return found

    def _detector_candidates(
        self, normalized: NormalizedText, gated: tuple[_Gated, ...]
    ) -> list[_Candidate]:
        """The hits of the ``gated`` detectors, in order; a hit inside an earlier exclusive
        detector's hit is dropped (that detector validated something more specific)."""
        found: list[_Candidate] = []
        view = normalized.view
        gate, phrases = self._gate(view)
        if not gate:
            return found
        span = normalized.span_to_original
        # the gate's phrase matches, for detectors led by a phrase; without gate phrases
        # (every detector open) each detector searches for its own
        ctx = ScanContext(normalized, phrases if len(self._gate_phrases) else None)
        claimed: list[tuple[int, int]] = []  # sorted (start, end) of exclusive hits
        for bit, detector, triggers, exclusive in gated:
            if not gate & bit:
                continue
            if triggers and not any(t in view for t in triggers):
                continue
            for hit in detector.scan(ctx):
                start, end = span(hit.start, hit.end)
                if claimed and _contained(claimed, start, end):
                    continue  # inside something a higher-priority detector validated
                if exclusive:
                    bisect.insort(claimed, (start, end))
                found.append(_Candidate(hit, start, end, exclusive))
        return found

    @staticmethod
    def as_dict(decision: Decision) -> dict[str, Any]:
        """The JSON body of ``POST /api/policy/test``."""
        return {
            "action": decision.action,
            "text": decision.text,
            "findings": [
                {"kind": f.kind, "start": f.start, "end": f.end, "rule": f.rule, "action": f.action}
                for f in decision.findings
            ],
        }


__all__ = ["PolicyConfigError", "PolicyEngine"]
