"""Search tokens: words in lower case, runs written without spaces as bigrams."""

from __future__ import annotations

from gateway.search_index import tokenize


def test_words_are_case_folded_and_distinct_in_first_seen_order() -> None:
    assert tokenize("Parcel PARCEL arrives, parcel!") == ["parcel", "arrives"]


def test_single_letters_and_underscores_are_not_words() -> None:
    assert tokenize("a b_c de") == ["de"]


def test_cjk_runs_give_bigrams_and_split_from_latin() -> None:
    assert tokenize("abc退款了") == ["abc", "退款", "款了"]


def test_a_lone_cjk_character_is_its_own_token() -> None:
    assert tokenize("好 ok") == ["ok", "好"]


def test_kana_and_hangul_are_runs_too() -> None:
    assert tokenize("ありがとう") == ["あり", "りが", "がと", "とう"]
    assert tokenize("감사합니다")[:2] == ["감사", "사합"]


def test_the_limit_bounds_the_rows_of_one_message() -> None:
    text = " ".join(f"w{i:03d}" for i in range(300))
    assert len(tokenize(text)) == 256
    assert tokenize(text, limit=3) == ["w000", "w001", "w002"]
