"""The Python engine passes every shared policy test vector (tests/policy/vectors.jsonl)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.policy import PolicyConfig, PolicyEngine
from gateway.policy.split import SplitWindow, flag_kinds

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


WINDOW_VECTORS = [
    json.loads(line)
    for line in Path(__file__).with_name("window_vectors.jsonl").read_text("utf-8").splitlines()
]


@pytest.mark.parametrize("vector", WINDOW_VECTORS, ids=[str(i) for i in range(len(WINDOW_VECTORS))])
def test_window_vector(vector: dict) -> None:
    """tests/policy/window_vectors.jsonl: a chat's messages through the gateway's
    cross-message window (the browser's window passes the same file)."""
    engine = _engine(vector["policy"])
    clock = [0.0]
    window = SplitWindow(clock=lambda: clock[0])
    for message in vector["messages"]:
        clock[0] = message["at"]
        text, direction = message["text"], message["direction"]
        d = window.check(engine, "chat", direction, text, engine.evaluate(text, direction))
        assert d.action == message["action"], text
        assert d.text == message["masked"], text
        assert [(f.kind, f.start, f.end, f.action, f.rule) for f in d.findings] == [
            (f["kind"], f["start"], f["end"], f["action"], f["rule"]) for f in message["findings"]
        ], text
        assert list(d.split_kinds) == message["split_kinds"]
        assert flag_kinds(d) == message["flags"]


def test_window_vectors_cover_kinds_actions_answers_and_expiry() -> None:
    last = [v["messages"][-1] for v in WINDOW_VECTORS]
    assert {k for m in last for k in m["split_kinds"]} == {"card", "cn_id", "phone", "iban"}
    answered = {f["rule"] for m in last if not m["split_kinds"] for f in m["findings"]}
    assert {"id_document.context", "card.cvv", "otp.context", "im_account.context"} <= answered
    assert {m["action"] for v in WINDOW_VECTORS for m in v["messages"]} == {
        "allow",
        "mask",
        "flag",
        "block",
    }
    assert sum(not m["findings"] for m in last) >= 6  # expired, interrupted, not an answer
