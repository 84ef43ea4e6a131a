from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.policy import (
    PolicyConfigError,
    PolicyEngine,
    PolicyRegistry,
    load_keyword_file,
    parse_list,
)
from gateway.policy.keywords import BUILTIN_PATH, parse_keyword_lines


def test_builtin_list_loads_and_has_both_languages() -> None:
    rules = load_keyword_file(BUILTIN_PATH)
    assert len(rules) >= 30
    assert any(r.term.isascii() for r in rules) and any(not r.term.isascii() for r in rules)


def test_file_format_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "words.tsv"
    good.write_text("# comment\n\n禁词\tvip\tblock\nfoo bar\tvip\n", encoding="utf-8")
    rules = load_keyword_file(good)
    assert [(r.term, r.category, r.action) for r in rules] == [
        ("禁词", "vip", "block"),
        ("foo bar", "vip", None),
    ]
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


def test_registry_caches_and_reloads_changed_operator_files(tmp_path: Path) -> None:
    words = tmp_path / "words.tsv"
    words.write_text("alpha\tvip\tblock\n", encoding="utf-8")
    settings = {"policy": {"builtin_keywords": False}}
    registry = PolicyRegistry(operator_files=[str(words)])
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

    changed = {
        "policy": {
            "builtin_keywords": False,
            "keywords": [{"term": "gamma", "category": "vip", "action": "block"}],
        }
    }
    assert PolicyRegistry().engine_for("t1", changed).evaluate("gamma", "agent").action == "block"


def test_thousands_of_terms(tmp_path: Path) -> None:
    text = "".join(f"zq{i:05d}term\tbulk\tblock\n" for i in range(5000))
    engine = PolicyEngine(None, extra_rules=parse_keyword_lines(text.splitlines(), "bulk"))
    assert engine.keywords.size >= 5000
    assert engine.evaluate("xx zq04999term yy", "customer").action == "block"
    assert engine.evaluate("xx zq04999termyy", "customer").action == "allow"


def test_operator_file_must_be_a_regular_bounded_file(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(PolicyConfigError, match="not a regular file"):
        load_keyword_file(fifo)  # would block forever on a plain open/read
    with pytest.raises(PolicyConfigError, match="not a regular file"):
        load_keyword_file("/dev/zero")
    secret = tmp_path / "secret.tsv"
    secret.write_text("x\tvip\ttop-secret-value-42\n", encoding="utf-8")
    with pytest.raises(PolicyConfigError) as info:
        load_keyword_file(secret)
    assert "top-secret-value-42" not in str(info.value) and ":1:" in str(info.value)


def test_uploaded_list_bounds_and_errors_never_echo_content() -> None:
    from gateway.policy.lists import MAX_LIST_BYTES

    with pytest.raises(PolicyConfigError, match="larger than"):
        parse_list("big", "x" * (MAX_LIST_BYTES + 1))
    with pytest.raises(PolicyConfigError) as info:
        parse_list("v", "ok\tvip\npassword123-not-a-term\n")
    assert "password123" not in str(info.value) and ":2:" in str(info.value)
    with pytest.raises(PolicyConfigError) as info:
        parse_list("v", "x" * 65 + "\tvip\n")
    assert "xxxx" not in str(info.value)
    with pytest.raises(PolicyConfigError, match="list name"):
        parse_list("../etc/passwd", "a\tb\n")


async def test_async_build_runs_off_loop_and_keeps_old_engine_on_timeout() -> None:
    import asyncio

    from gateway.policy import PolicyBuildTimeout
    from gateway.policy.lists import lists_revision

    text = "".join(f"t{i:05d}x\tbulk\n" for i in range(3000))

    async def loader(tenant_id: str):
        return [("bulk", text)]

    registry = PolicyRegistry(lists_loader=loader, build_timeout=5.0)
    first = await registry.engine("t", {"policy": {}})
    assert first.evaluate("t02999x", "customer").action == "allow"
    settings = {"policy": {}, "keyword_lists_rev": lists_revision([("bulk", "d")])}
    registry.build_timeout = 0.000001
    with pytest.raises(PolicyBuildTimeout):
        await registry.build("t", settings)
    assert await registry.engine("t", settings) is first  # previous engine stays in force
    registry.build_timeout = 5.0
    await asyncio.sleep(0)
    built = await registry.engine("t", dict(settings))
    assert built.evaluate("t02999x", "customer").action == "flag"


def test_builtin_lexicon_covers_categories_variants_and_opt_in() -> None:
    from gateway.policy import PolicyConfig
    from gateway.policy.keywords import builtin_rules

    rules = builtin_rules()
    categories = {r.category for r in rules}
    assert {"fraud", "phishing", "social_engineering", "abuse"} <= categories
    assert "political" not in categories
    assert sum(r.category == "fraud" for r in rules) >= 40
    engine = PolicyEngine(PolicyConfig())
    assert engine.evaluate("我们这里有兼職刷單返利", "customer").action == "flag"  # Traditional
    assert engine.evaluate("jian zhi shua dan, shuadanfanli", "customer").action == "flag"
    assert engine.evaluate("I study Chinese in Shuangliu", "customer").action == "allow"
    assert engine.evaluate("他们要颠覆国家政权", "customer").action == "allow"
    political = PolicyEngine(PolicyConfig.from_dict({"builtin_categories": ["political"]}))
    assert political.evaluate("他们要顛覆國家政權", "customer").action == "flag"


@pytest.mark.parametrize(
    "text", ["兼职shua单日结", "刷dan返利", "兼职 shua 单", "兼职shuadan", "点击lian接解冻"]
)
def test_terms_written_half_in_pinyin_are_found(text: str) -> None:
    from gateway.policy import PolicyConfig

    d = PolicyEngine(PolicyConfig()).evaluate(text, "customer")
    assert d.action == "flag" and set(d.kinds) <= {"fraud", "phishing"}


@pytest.mark.parametrize("text", ["dan is my name", "I use a shua brush", "lian jie"])
def test_pinyin_without_a_han_character_of_the_term_stays_english(text: str) -> None:
    from gateway.policy import PolicyConfig

    assert PolicyEngine(PolicyConfig()).evaluate(text, "customer").action == "allow"


def test_mixed_variants_of_a_term() -> None:
    from gateway.policy.lexicon_pinyin import variants

    assert variants("刷单", ["shua", "dan"]) == ["shua单", "刷dan"]
    assert variants("兼职刷单", ["jian", "zhi", "shua", "dan"]) == [
        "jian zhi shua dan",
        "jian职刷单",
        "兼zhi刷单",
        "兼职shua单",
        "兼职刷dan",
        "jianzhi刷单",
        "兼zhishua单",
        "兼职shuadan",
    ]


def test_pinyin_file_is_up_to_date() -> None:
    pytest.importorskip("pypinyin")
    from gateway.policy.lexicon_pinyin import PINYIN_PATH, generate

    assert PINYIN_PATH.read_text(encoding="utf-8") == generate()
