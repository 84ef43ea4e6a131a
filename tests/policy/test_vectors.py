"""The Python engine passes every shared policy test vector (tests/policy/vectors.jsonl)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.policy import PolicyConfig, PolicyEngine

VECTORS = [
    json.loads(line)
    for line in Path(__file__).with_name("vectors.jsonl").read_text("utf-8").splitlines()
]
_ENGINES: dict[str, PolicyEngine] = {}


def _engine(policy: dict) -> PolicyEngine:
    key = json.dumps(policy, sort_keys=True)
    if key not in _ENGINES:
        _ENGINES[key] = PolicyEngine(PolicyConfig.from_dict(policy))
    return _ENGINES[key]


@pytest.mark.parametrize("vector", VECTORS, ids=[str(i) for i in range(len(VECTORS))])
def test_vector(vector: dict) -> None:
    engine = _engine(vector["policy"])
    text = vector["text"]
    d = engine.evaluate(text, vector["direction"])
    assert d.action == vector["action"]
    assert [
        {"kind": f.kind, "start": f.start, "end": f.end, "action": f.action} for f in d.findings
    ] == [{k: f[k] for k in ("kind", "start", "end", "action")} for f in vector["findings"]]
    for f in vector["findings"]:  # the UTF-16 offsets a JavaScript engine uses
        assert len(text[: f["start"]].encode("utf-16-le")) // 2 == f["start_utf16"]
    assert d.text == vector["masked"]
    assert engine.for_audience(text, d, "plugin") == vector["plugin"]


def test_vectors_cover_every_evasion_class_and_kind() -> None:
    kinds = {f["kind"] for v in VECTORS for f in v["findings"]}
    assert {
        "card",
        "cn_id",
        "phone",
        "email",
        "name",
        "address",
        "password",
        "social_engineering",
        "fraud",
        "link_external",
    } <= kinds
    assert len(VECTORS) >= 30
