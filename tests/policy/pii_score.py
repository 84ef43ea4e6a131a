"""Scores the ``name``/``address``/``birth_date``/``vehicle_plate`` detectors on
``pii_corpus.jsonl`` (used by a test and by bench/filter.py). A predicted name or date
matches a gold one of the same span exactly; a predicted address matches when it overlaps a
gold address with intersection-over-union >= 0.6 (where an address ends -- "…88号" vs
"…88号华星大厦" -- is a matter of taste, its presence is not), a plate likewise (the finding
leaves out the province's character the label holds)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from gateway.policy import PolicyEngine

CORPUS = Path(__file__).with_name("pii_corpus.jsonl")
KINDS = ("name", "address", "birth_date", "vehicle_plate")


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def _match(kind: str, pred: tuple[int, int], gold: tuple[int, int]) -> bool:
    if kind in ("name", "birth_date"):
        return pred == gold
    inter = max(0, min(pred[1], gold[1]) - max(pred[0], gold[0]))
    union = max(pred[1], gold[1]) - min(pred[0], gold[0])
    return union > 0 and inter / union >= 0.6


def score(engine: PolicyEngine) -> tuple[dict[str, Score], int, list[str]]:
    """Per-kind scores, the corpus size, and a few error lines (for the report)."""
    scores = {k: Score() for k in KINDS}
    errors: list[str] = []
    lines = [json.loads(x) for x in CORPUS.read_text("utf-8").splitlines()]
    for row in lines:
        d = engine.evaluate(row["text"], "customer")
        for kind in KINDS:
            preds = [(f.start, f.end) for f in d.findings if f.kind == kind]
            golds = [(s["start"], s["end"]) for s in row["spans"] if s["kind"] == kind]
            unmatched = list(golds)
            for p in preds:
                hit = next((g for g in unmatched if _match(kind, p, g)), None)
                if hit is None:
                    scores[kind].fp += 1
                    errors.append(f"FP {kind}: {row['text']} -> {row['text'][p[0] : p[1]]}")
                else:
                    scores[kind].tp += 1
                    unmatched.remove(hit)
            scores[kind].fn += len(unmatched)
            errors.extend(f"FN {kind}: {row['text']}" for _ in unmatched)
    return scores, len(lines), errors
