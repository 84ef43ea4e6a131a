"""The end document's context rules (policy/end.py ``rules``) and the translation of their
patterns to JavaScript (policy/jsregex.py). tests/e2e/test_browser_end_policy.py runs the
translated patterns in Chromium against Python's matches."""

from __future__ import annotations

import json
import random
import re

import pytest

from crypto.e2e import MAX_POLICY_CHARS
from gateway.policy.config import PolicyConfig
from gateway.policy.detectors import (
    CONTEXT_RULES,
    HIDDEN_RULES,
    VEHICLE_PLATE_RULE,
    ContextRuleDetector,
    default_detectors,
)
from gateway.policy.detectors.card import CARD_WORDS, EXPIRY_CONTEXT_RULE
from gateway.policy.detectors.email import ADDRESS, AFTER_CUE, SPELT_ADDRESS
from gateway.policy.detectors.names import ASKED_CUES
from gateway.policy.detectors.parts import HEAD_RULE, LEADING_PHRASES, PART, TAIL_RULE
from gateway.policy.end import END_CONTEXT_RULES, END_KINDS, end_document, end_document_text
from gateway.policy.engine import PolicyEngine
from gateway.policy.jsregex import UntranslatableRegex, to_js
from gateway.policy.links import LOOKALIKE_SCRIPTS, URL, script_of
from gateway.policy.lists import (
    MAX_LIST_BYTES,
    MAX_LISTS,
    MAX_TENANT_TERMS,
    check_tenant_totals,
    parse_list,
)
from gateway.policy.schema import MAX_INLINE_KEYWORDS, MAX_TERM_CHARS
from gateway.policy.split import ENDING, ENDING_CHARS, LEAD_IN


def test_the_document_carries_every_context_rule_of_an_end_kind():
    """A rule added to the gateway reaches the browser engine with its phrases: nothing in
    policy.js has to be edited for a new cue."""
    rules = end_document(PolicyEngine(), None, 0)["rules"]
    run_by_a_detector = {
        d.rule for d in default_detectors() if isinstance(d, ContextRuleDetector)
    }  # the expiry date's and the plate's rules too: they are no question's answer
    assert {EXPIRY_CONTEXT_RULE, VEHICLE_PLATE_RULE} <= run_by_a_detector - set(CONTEXT_RULES)
    expected = {r.rule for r in (*CONTEXT_RULES, *run_by_a_detector) if r.kind in END_KINDS}
    assert set(rules) == expected
    for rule in END_CONTEXT_RULES:
        carried = rules[rule.rule]
        assert carried["kind"] == rule.kind
        assert carried["phrases"] == list(rule.triggers)
        assert carried["after"] == to_js(rule.after.pattern)
        assert carried["more"] == to_js(rule.more.pattern)
        assert carried["letters"] is rule.needs_non_letter
        assert carried["checked"] is (rule.valid is not None)
        assert "(?<value>" in carried["after"]
        # only an expiry date needs a message about a card (policy.js has no list of its own)
        about = list(CARD_WORDS) if rule is EXPIRY_CONTEXT_RULE else None
        assert carried.get("about") == about


def test_every_carried_pattern_fits_the_browser_engines_bound():
    """policy.js refuses a document with a pattern over 8,192 characters (isPattern): the
    default document must stay under it, or the widget would have no policy."""
    doc = end_document(PolicyEngine(), None, 0)
    patterns = [doc["email"]["address"], doc["email"]["spelt"], *doc["email"]["cued"].values()]
    patterns += [p for rule in doc["rules"].values() for p in (rule["after"], rule["more"])]
    patterns += [doc["window"]["ending"], doc["window"]["lead_in"]]
    patterns += [doc["parts"]["after"], doc["parts"]["more"], doc["parts"]["part"]]
    patterns += [doc["parts"]["head"]["after"], doc["parts"]["head"]["more"]]
    assert max(len(p) for p in patterns) <= 8192


def test_the_document_carries_the_email_patterns():
    email = end_document(PolicyEngine(), None, 0)["email"]
    assert email["address"] == to_js(ADDRESS.pattern)
    assert email["spelt"] == to_js(SPELT_ADDRESS.pattern)
    assert email["cued"] == {cue: to_js(after.pattern) for cue, after in AFTER_CUE.items()}
    assert all("(?<address>" in pattern for pattern in email["cued"].values())


def test_the_document_carries_the_tail_head_and_parts_of_a_number_in_parts():
    parts = end_document(PolicyEngine(), None, 0)["parts"]
    assert parts == {
        "phrases": list(TAIL_RULE.triggers),
        "after": to_js(TAIL_RULE.after.pattern),
        "more": to_js(TAIL_RULE.more.pattern),
        "part": to_js(PART.pattern),
        "head": {
            "phrases": list(HEAD_RULE.triggers),
            "after": to_js(HEAD_RULE.after.pattern),
            "more": to_js(HEAD_RULE.more.pattern),
            "leading": list(LEADING_PHRASES),
        },
    }
    assert "(?<value>" in parts["after"] and "(?<value>" in parts["head"]["after"]


def test_the_document_carries_the_rules_masked_whole():
    """A security code, an expiry date and a number given in parts are masked whole at the
    ends too, whatever the kind's style: the browser reads which rules from the document,
    not from a copy of the list of its own."""
    hidden = end_document(PolicyEngine(), None, 0)["hidden"]
    assert hidden == sorted(HIDDEN_RULES)
    assert {"card.cvv", "card.expiry", "parts"} <= set(hidden)


def test_the_document_carries_the_windows_question_data():
    """The ends read a customer's answer with the question before it (policy_window.js)
    with the gateway's own rules, name cues, words and lead-in (split.py)."""
    window = end_document(PolicyEngine(), None, 0)["window"]
    assert window == {
        "asked": [rule.rule for rule in CONTEXT_RULES],
        "names": list(ASKED_CUES),
        "ending": to_js(ENDING.pattern),
        "ending_chars": ENDING_CHARS,
        "lead_in": to_js(LEAD_IN.pattern),
    }
    assert LEAD_IN.flags & re.IGNORECASE  # policy_window.js compiles lead_in with "i"


@pytest.mark.parametrize(
    ("python", "javascript"),
    [
        (r"[0-9]{4,8}+", r"(?=(?<a1>[0-9]{4,8}))\k<a1>"),
        (r"(?>ab|cd)x", r"(?=(?<a1>(?:ab|cd)))\k<a1>x"),
        (r"(?:is|was)?", r"(?:is|was)?"),
        (r"a*?b+c{2}d{3,}", r"a*?b+c{2}d{3,}"),
        (r"(?<![0-9])(?=x)(?!y)(?<=z)", r"(?<![0-9])(?=x)(?!y)(?<=z)"),
        (r"(?P<value>\d)", r"(?<value>[\p{Nd}])"),
        (r"(a)(?:b)+", r"(?:a)b+"),
        (r"[^a\-z\]]", r"[^a\-z\]]"),
        (r"a.b", r"a[^\n]b"),
        (r"x[^y]", r"x[^y]"),
        (r"\(\)\.\$/", r"\(\)\.\$\/"),
        (r"^ab\Z", r"^ab$"),
        ("号码|编号", "(?:号码|编号)"),
        (r"\n\t", r"\u{a}\u{9}"),
        (r"[\W_]+", r"[^\p{L}\p{N}]+"),
        (r"[_\W]", r"[^\p{L}\p{N}]"),
        # Python's $ also matches before a final newline; its \b knows Unicode words
        (r"ab$", r"ab(?=\n?$)"),
        # a word character but the others; a back-reference to a group the ends read
        (r"[^\W_]", r"(?:(?![_])[\p{L}\p{N}_])"),
        (r"[^\W\da-z]", r"(?:(?![\p{Nd}a-z])[\p{L}\p{N}_])"),
        (r"(?P<surname>a)(?P=surname)", r"(?<surname>a)\k<surname>"),
        (
            r"\bab",
            r"(?:(?<=[\p{L}\p{N}_])(?![\p{L}\p{N}_])|(?<![\p{L}\p{N}_])(?=[\p{L}\p{N}_]))ab",
        ),
    ],
)
def test_the_translation_of_each_construct(python, javascript):
    assert to_js(python) == javascript


def test_python_whitespace_is_written_exactly():
    """JavaScript's \\s adds U+FEFF and lacks U+001C..U+001F: the class lists Python's own."""
    translated = to_js(r"\s")
    assert "\\u{1c}-\\u{20}" in translated and "\\u{3000}" in translated
    assert "feff" not in translated


def test_atomic_groups_are_numbered_apart():
    assert to_js(r"a{1,2}+b{3}+") == r"(?=(?<a1>a{1,2}))\k<a1>(?=(?<a2>b{3}))\k<a2>"
    nested = to_js(r"(?:x[ ]?+y){2,3}+")
    assert nested == r"(?=(?<a2>(?:x(?=(?<a1>\u{20}?))\k<a1>y){2,3}))\k<a2>"


@pytest.mark.parametrize(
    "pattern",
    [
        r"\Bword",  # Python's \B is Unicode-aware, JavaScript's is ASCII (not translated)
        r"\w+",
        r"(?i)abc",
        r"(?i:abc)",
        r"(a)\1",
        r"[\W]",
        r"[\Wx]",
        r"[\S]",
    ],
)
def test_constructs_with_another_meaning_are_refused(pattern):
    with pytest.raises(UntranslatableRegex):
        to_js(pattern)


def test_every_context_rule_translates():
    for rule in END_CONTEXT_RULES:
        for pattern in (rule.after, rule.more):
            assert re.search(r"\(\?P<", to_js(pattern.pattern)) is None


def test_the_document_carries_each_letters_script_and_the_case_folds():
    """The browser judges a link's host by the script of each of its letters and digits,
    and folds case as Python does: the runs give back ``script_of`` for every letter and
    digit outside ASCII, and nothing else; ``casefold`` turns each lower case into the fold."""
    config = PolicyConfig.from_dict({"allowed_link_domains": ["Ex.com"]})
    doc = end_document(PolicyEngine(config), None, 0)
    links = doc["links"]
    assert links["url"] == to_js(URL.pattern) and links["lookalike"] == sorted(LOOKALIKE_SCRIPTS)
    names, of = links["scripts"]["names"], {}
    for first, count, index in links["scripts"]["runs"]:
        for code in range(first, first + count):
            of[code] = names[index]
    rng = random.Random(5)
    for code in [*rng.sample(range(0x80, 0x30000), 20_000), 0x430, 0x3B1, 0xE0, 0x4E2D]:
        if 0xD800 <= code <= 0xDFFF:
            continue
        ch = chr(code)
        assert of.get(code) == (script_of(ch) if ch.isalnum() else None), hex(code)
    assert doc["link_domains"] == ["ex.com"]
    folds = doc["casefold"]
    assert folds["ß"] == "ss" and folds["ſ"] == "s" and "a" not in folds
    assert all(ch.lower() != fold == ch.casefold() for ch, fold in folds.items())


def test_a_tenant_at_every_keyword_bound_can_sign_its_end_policy():
    """A tenant with every keyword list it may have, each at its byte bound, as many terms
    as it may have, and every inline term at its longest, compiles to an end document
    within ``MAX_POLICY_CHARS`` (which the gateway and the widget hold): its admins can
    sign it. The widest entries: long categories, the terms as long as the bytes allow."""
    per_list = MAX_TENANT_TERMS // MAX_LISTS
    lists = []
    for k in range(MAX_LISTS):
        category = "c" * 30 + f"{k:02d}"
        room = MAX_LIST_BYTES // per_list - len(category) - len("\t\tblock\n")
        lines = [
            f"{k:02d}{n:05d}".ljust(room, "x") + f"\t{category}\tblock" for n in range(per_list)
        ]
        lists.append(parse_list(f"list{k}", "\n".join(lines) + "\n"))
    check_tenant_totals(lists)  # at the bounds, not over them
    inline = [
        {"term": f"{n:04d}".ljust(MAX_TERM_CHARS, "y"), "category": "d" * 32, "action": "flag"}
        for n in range(MAX_INLINE_KEYWORDS)
    ]
    engine = PolicyEngine(
        PolicyConfig.from_dict({"keywords": inline}),
        extra_rules=[rule for kept in lists for rule in kept.rules],
    )
    text = end_document_text(engine, "demo", 0)
    assert len(json.loads(text)["keywords"]) == MAX_TENANT_TERMS + MAX_INLINE_KEYWORDS + len(
        json.loads(end_document_text(PolicyEngine(), "demo", 0))["keywords"]
    )
    assert len(text) <= MAX_POLICY_CHARS, len(text)
