from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.policy import PolicyConfigError, PolicyEngine, PolicyRegistry, load_keyword_file
from gateway.policy.keywords import BUILTIN_PATH


def test_builtin_list_loads_and_has_both_languages() -> None:
    rules = load_keyword_file(BUILTIN_PATH)
    assert len(rules) >= 30
    assert any(r.term.isascii() for r in rules) and any(not r.term.isascii() for r in rules)


def test_file_format_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "words.tsv"
    good.write_text("# comment\n\n禁词\tvip\tblock\nfoo bar\tvip\n", encoding="utf-8")
    rules = load_keyword_file(good)
    assert [(r.term, r.category, r.action) for r in rules] == [
        ("禁词", "vip", "block"), ("foo bar", "vip", None)]
    bad = tmp_path / "gbk.tsv"
    bad.write_bytes(b"ok\tvip\tblock\n" + "禁词\tvip\tblock\n".encode("gbk"))
    with pytest.raises(PolicyConfigError, match=r"gbk\.tsv:2: not valid UTF-8"):
        load_keyword_file(bad)
    cols = tmp_path / "cols.tsv"
    cols.write_text("only-one-column\n", encoding="utf-8")
    with pytest.raises(PolicyConfigError, match=r"cols\.tsv:1"):
        load_keyword_file(cols)
    action = tmp_path / "action.tsv"
    action.write_text("x\tvip\tnuke\n", encoding="utf-8")
    with pytest.raises(PolicyConfigError, match="unknown action"):
        load_keyword_file(action)
    with pytest.raises(PolicyConfigError, match="cannot read"):
        load_keyword_file(tmp_path / "missing.tsv")


def test_registry_caches_and_reloads_changed_files(tmp_path: Path) -> None:
    words = tmp_path / "words.tsv"
    words.write_text("alpha\tvip\tblock\n", encoding="utf-8")
    settings = {"policy": {"keyword_files": [str(words)], "builtin_keywords": False}}
    registry = PolicyRegistry()
    first = registry.engine_for("t1", settings)
    assert registry.engine_for("t1", settings) is first
    assert first.evaluate("ALPHA", "customer").action == "block"

    words.write_text("beta\tvip\tblock\n", encoding="utf-8")
    os.utime(words, ns=(1, 1))
    registry.reload()
    second = registry.engine_for("t1", settings)
    assert second is not first
    assert second.evaluate("alpha", "customer").action == "allow"
    assert second.evaluate("b e t a", "customer").action == "block"

    words.write_bytes(b"\xff\xfe bad\tvip\tblock\n")
    os.utime(words, ns=(2, 2))
    with pytest.raises(PolicyConfigError, match="not valid UTF-8"):
        registry.reload()
    assert registry.engine_for("t1", settings) is second  # old policy stays in force

    changed = {"policy": {**settings["policy"], "keyword_files": [], "keywords": [
        {"term": "gamma", "category": "vip", "action": "block"}]}}
    assert registry.engine_for("t1", changed).evaluate("gamma", "agent").action == "block"


def test_thousands_of_terms(tmp_path: Path) -> None:
    terms = [{"term": f"zq{i:05d}term", "category": "bulk", "action": "block"} for i in range(5000)]
    engine = PolicyEngine(PolicyEngine(None).config.from_dict({"keywords": terms}))
    assert engine.keywords.size >= 5000
    assert engine.evaluate("xx zq04999term yy", "customer").action == "block"
    assert engine.evaluate("xx zq04999termyy", "customer").action == "allow"
