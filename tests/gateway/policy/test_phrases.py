"""The phrase automaton (gateway/policy/phrases.py): every occurrence, code-point offsets,
sub-ranges and lone surrogates, checked against a plain substring search."""

from __future__ import annotations

import random

from gateway.policy.phrases import Phrases


def _naive(phrases: list[str], text: str) -> set[tuple[int, int, int]]:
    found = set()
    for index, phrase in enumerate(phrases):
        at = text.find(phrase)
        while at >= 0:
            found.add((index, at, at + len(phrase)))
            at = text.find(phrase, at + 1)
    return found


def test_every_occurrence_with_code_point_offsets() -> None:
    phrases = ["er", "order", "密码", "验证码", "码", "😀a"]
    automaton = Phrases((p, i) for i, p in enumerate(phrases))
    rng = random.Random(4)
    alphabet = ["o", "r", "d", "e", "密", "码", "验", "证", "😀", "a", " "]
    for _ in range(5_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        found = automaton.find(text)
        assert set(found) == _naive(phrases, text), text
        assert [e for _, _, e in found] == sorted(e for _, _, e in found)  # by end position
        assert all(automaton.values[k] == k for k, _, _ in found)


def test_a_sub_range_reports_offsets_into_the_whole_text() -> None:
    automaton = Phrases([("ab", "x")])
    text = "ab ab ab"
    assert automaton.find(text, 2, 6) == [(0, 3, 5)]
    assert automaton.find(text, 0, 4) == [(0, 0, 2)]


def test_lone_surrogates_keep_every_offset() -> None:
    automaton = Phrases([("code", 1), ("密码", 2)])
    text = "\ud800code \udfff密码"
    assert automaton.find(text) == [(0, 1, 5), (1, 7, 9)]


def test_an_empty_set_finds_nothing() -> None:
    assert Phrases(()).find("anything") == []
    assert len(Phrases([("", 1)])) == 0
