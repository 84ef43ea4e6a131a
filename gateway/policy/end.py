"""The policy document the END engines run (end-to-end mode, issue 13).

In an e2e chat the gateway cannot read a message, so the policy runs where the text is: the
customer's widget masks before it seals, the agent's console checks before it seals
(``gateway/web/policy.js``, the browser twin of this package for the kinds listed in
:data:`END_KINDS`). This module compiles a tenant's :class:`PolicyEngine` into the JSON
document that engine reads. Everything the browser would otherwise need a library for is
*data taken from the libraries the Python engine uses*, so the two engines agree:

* ``keywords`` -- every term of the built-in lexicon, the tenant's uploaded lists and inline
  terms, already folded and compacted exactly as :class:`KeywordMatcher` keys them, with the
  word-boundary flags of their edges;
* ``fold`` -- the Traditional -> Simplified entries of the normalisation table for every
  character a term or a context phrase uses (the browser has no OpenCC);
* ``phone`` -- libphonenumber's patterns: full validation data for the tenant's regions and
  for the regions a number after a phone cue is tried in (``phone.CUE_VALID_IN``), the
  general "possible number" pattern of every calling code for international numbers;
* ``iban`` -- python-stdnum's BBAN structure per country;
* ``rules`` -- every context rule the end engine runs (a value known by the phrase before
  it: one-time codes, security codes, identity documents, accounts, phones after a cue):
  its kind, phrases and the filler and value patterns, translated from this engine's
  patterns by :mod:`.jsregex`. The browser places each rule it knows by name among its
  detectors and runs the others after them; only the value checks (a legacy or mistyped
  ID's birth date, a phone's regions) are written in the browser;
* ``email`` -- the e-mail detector's patterns, translated the same way;
* ``parts`` -- the phrases and pattern of a number's last digits named apart, the pattern
  of one part, and the phrases and pattern of its first digits named apart (``head``), with
  which the browser finds an ID, card or mobile given in two or three parts
  (``detectors/parts.py``);
* ``hidden`` -- the rules whose findings are masked whole whatever their kind's style
  (``detectors.HIDDEN_RULES``: a security code, an expiry date, a number given in parts);
* ``links`` -- the link pattern, translated, and the script of every letter and digit
  outside ASCII (Python's Unicode names, which a browser lacks), with which the browser
  judges a link's host (``links.py``); ``link_domains`` -- the tenant's allowed link
  domains as hosts (a document without them finds no links: its ``actions`` predate them);
* ``address`` -- the administrative divisions' names and the address detector's patterns,
  translated, with which the browser finds postal addresses (``detectors/address.py``);
* ``names`` -- the name detector's word lists and patterns, translated, with which the
  browser finds person names (``detectors/names.py``);
* ``casefold`` -- every character whose case fold is not its lower case (``ß`` -> ``ss``):
  the view is case-folded, and a browser only lowercases;
* ``window`` -- what the ends' cross-message window (``gateway/web/policy_window.js``, the
  twin of :mod:`.split`) reads a question and its answer with: the rules whose phrases a
  question names (``asked``), the words that may end a customer's message after such a
  phrase (``ending``) and how far from its end it may start (``ending_chars``), and the
  acknowledgement an answer may start with (``lead_in``, matched ignoring case).

The tenant's admins sign the document's text *as sent* with the tenant key
(``cipherdesk e2e sign-policy``; :func:`crypto.e2e.verify_policy`), so a gateway cannot weaken
it for a widget that pins that key; a page without a signed document uses the default one
compiled into the SRI-pinned widget bundle. ``tests/policy/vectors.jsonl`` binds both engines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import cache
from typing import Any

from phonenumbers import PhoneMetadata
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE
from stdnum import numdb

from .describe import DETECTOR_KINDS
from .detectors import (
    CONTEXT_RULES,
    HIDDEN_RULES,
    VEHICLE_PLATE_RULE,
    address,
    default_detectors,
    names,
)
from .detectors.card import CARD_WORDS, EXPIRY_CONTEXT_RULE
from .detectors.context import ContextRule
from .detectors.email import ADDRESS, AFTER_CUE, SPELT_ADDRESS
from .detectors.names import ASKED_CUES
from .detectors.parts import HEAD_RULE, LEADING_PHRASES, PART, TAIL_RULE
from .detectors.phone import CUE_VALID_IN
from .engine import PolicyEngine
from .jsregex import to_js
from .keywords import compact_term, edge_needs_boundary
from .links import LOOKALIKE_SCRIPTS, MIN_LINK_CHARS, TRAILING, URL, allowed_hosts, script_of
from .normalize import fold, tables
from .split import ENDING, ENDING_CHARS, LEAD_IN
from .types import DIRECTIONS

END_VERSION = 1
END_KINDS = DETECTOR_KINDS
"""Detector kinds the end engine implements: every one (keyword categories come on top)."""

_PHONE_TYPES = (
    "fixed_line",
    "mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
)
END_CONTEXT_RULES: tuple[ContextRule, ...] = (
    *CONTEXT_RULES,
    EXPIRY_CONTEXT_RULE,
    VEHICLE_PLATE_RULE,
)
"""The context rules the end document carries (``rules``): every one of a kind in
:data:`END_KINDS`."""

_IBAN_STRUCT = re.compile(r"([1-9][0-9]*)!([nac])")


def end_document(engine: PolicyEngine, tenant: str | None, issued: int) -> dict[str, Any]:
    """The end policy of ``engine`` for ``tenant`` (``None``: the default bundled one)."""
    config = engine.config
    kinds = set(END_KINDS) | set(config.actions) | {r.category for r in engine.rules}
    actions = {kind: [config.action_for(kind, d) for d in DIRECTIONS] for kind in sorted(kinds)}
    masks = {kind: config.mask_for(kind) for kind in sorted(kinds)}
    grouped: dict[str, list[list[str | None]]] = {}
    for rule in engine.rules:
        grouped.setdefault(compact_term(rule.term), []).append([rule.category, rule.action])
    keywords = [
        [key, int(edge_needs_boundary(key[0])), int(edge_needs_boundary(key[-1])), rules]
        for key, rules in sorted(grouped.items())
    ]
    return {
        "v": END_VERSION,
        "tenant": tenant,
        "issued": issued,
        "actions": actions,
        "masks": masks,
        "keywords": keywords,
        "fold": _fold_entries(_folded_chars(grouped) | _gateway_chars()),
        "phone": {
            "regions": {r: _region(r) for r in config.phone_regions if _region(r) is not None},
            "cue_regions": {r: _region(r) for r in CUE_VALID_IN if _region(r) is not None},
            "cc": _calling_codes(),
        },
        "iban": _iban_formats(),
        "link_domains": list(allowed_hosts(config.allowed_link_domains)),
        **carried_patterns(),
    }


def end_document_text(engine: PolicyEngine, tenant: str | None, issued: int) -> str:
    """The document as the text an admin signs (compact JSON, UTF-8 kept readable)."""
    return json.dumps(
        end_document(engine, tenant, issued), ensure_ascii=False, separators=(",", ":")
    )


@cache
def _gateway_chars() -> frozenset[str]:
    """The characters, folded, of what the end engine matches that is the gateway's own: the
    cue phrases of every detector (context rules' cues, card security codes, identity
    documents, e-mail nouns, names' cues), the division names, the address and name patterns
    and the name detector's word lists. Their Traditional forms (臺北市, 號, 張, 房東) must fold
    in the browser as they do here. The same for every document: gathered once."""
    return _folded_chars(
        (
            *(
                phrase
                for detector in default_detectors()
                if set(detector.kinds) <= set(END_KINDS)
                for phrase in getattr(detector, "gate_phrases", ())
            ),
            *address.division_names(),
            *(p.pattern for p in (*_ADDRESS_PATTERNS.values(), *names.END_PATTERNS.values())),
            *(word for words in names.END_WORDS.values() for word in words),
        )
    )


def _folded_chars(texts: Iterable[str]) -> frozenset[str]:
    """Every character of ``texts`` as the view folds it."""
    return frozenset(c for text in texts for c in fold(text))


def carried_patterns() -> dict[str, Any]:
    """The document's ``rules``, ``email``, ``window``, ``parts``, ``links``, ``casefold``,
    ``hidden``, ``address`` and ``names``: this gateway's own patterns and data, the same for every
    tenant. An uploaded document must carry exactly these (or none, signed before they were
    carried): a tenant signs its policy, not patterns of its own, which would run in its
    customers' browsers unchecked."""
    return {
        "rules": _rules(),
        "email": _email(),
        "window": _window(),
        "parts": _parts(),
        "links": _links(),
        "casefold": _casefold(),
        "hidden": sorted(HIDDEN_RULES),
        "address": _address(),
        "names": _names(),
    }


@cache
def _casefold() -> dict[str, str]:
    """Each character whose case fold is not its lower case (ß -> ss, ſ -> s, Cherokee ...):
    the engines fold text with Python's ``str.casefold`` (``normalize.py``), a browser has
    only the lower case. The browser reads the bundled default's."""
    folds = {}
    for code in range(0x110000):
        if 0xD800 <= code <= 0xDFFF:
            continue
        ch = chr(code)
        if ch.casefold() != ch.lower():
            folds[ch] = ch.casefold()
    return folds


@cache
def _links() -> dict[str, Any]:
    """What the browser finds and judges links with (``links.py``): the link pattern, the
    characters a link does not end with and its fewest characters, and the script of every
    letter and digit outside ASCII (``scripts``: the scripts' names, and runs of code points
    ``[first, count, name's index]``) with the ones that pass for Latin (``lookalike``): a
    host is judged by them, and a browser has no table of Unicode names."""
    runs: list[list[int]] = []
    names: dict[str, int] = {}
    for code in range(0x80, 0x110000):
        ch = chr(code)
        if not ch.isalnum():
            continue
        index = names.setdefault(script_of(ch), len(names))
        last = runs[-1] if runs else None
        if last is not None and last[0] + last[1] == code and last[2] == index:
            last[1] += 1
        else:
            runs.append([code, 1, index])
    return {
        "url": to_js(URL.pattern),
        "trailing": TRAILING,
        "min_chars": MIN_LINK_CHARS,
        "scripts": {"names": list(names), "runs": runs},
        "lookalike": sorted(LOOKALIKE_SCRIPTS),
    }


@cache
def _rules() -> dict[str, dict[str, Any]]:
    """Rule name -> kind, phrases, the filler and value as one JavaScript pattern (with the
    named group ``value``), the pattern of another value joined to it (``more``), whether a
    value that is only letters is no value (``letters``) and whether the value must pass the
    rule's check (``checked``); for a rule whose value may stand before its phrase, that
    value and filler with the phrases in a look-ahead (``before``); for a card's expiry date
    also the words that make a message about a card (``about``)."""
    rules = {
        rule.rule: {
            "kind": rule.kind,
            "phrases": list(rule.triggers),
            "after": to_js(rule.after.pattern),
            "more": to_js(rule.more.pattern),
            "letters": rule.needs_non_letter,
            "checked": rule.valid is not None,
            **({"before": to_js(rule.before.pattern)} if rule.before is not None else {}),
        }
        for rule in END_CONTEXT_RULES
        if rule.kind in END_KINDS
    }
    # an expiry date counts only in a message about a card (card.py CardExpiryDetector)
    rules[EXPIRY_CONTEXT_RULE.rule]["about"] = list(CARD_WORDS)
    return rules


@cache
def _parts() -> dict[str, Any]:
    """The phrases and the filler-and-tail pattern of a number's last digits named apart,
    the pattern of one part of a number, and the phrases and the filler-and-head pattern of
    its first digits named apart with the phrases that may follow them ("138开头";
    ``detectors/parts.py``): not a context rule of its own (an older browser bundle runs
    rules it does not know, and a tail alone is no finding)."""
    return {
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


@cache
def _names() -> dict[str, Any]:
    """What the browser finds person names with (``detectors/names.py``): the detector's word
    lists (each pattern's phrases, the cues, the words that are no name) and its patterns
    translated; the places a cue's word may be are the ``address`` divisions and their
    stems (``division_suffixes``)."""
    return {
        "words": {name: list(words) for name, words in names.END_WORDS.items()},
        "patterns": {name: to_js(p.pattern) for name, p in names.END_PATTERNS.items()},
    }


_ADDRESS_PATTERNS = {
    "detail": address.DETAIL,
    "road_number": address.ROAD_NUMBER,
    "flat": address.FLAT,
    "building_unit": address.BUILDING_UNIT,
    "household": address.HOUSEHOLD,
    "unit": address.UNIT_WORD,
    "lead": address.LEAD,
    "leading_places": address.LEADING_PLACES,
    "en": address.EN,
    "en_head": address.EN_HEAD,
    "en_flat": address.EN_FLAT,
    "po_box": address.PO_BOX,
}
"""The address detector's patterns, by the name the document carries them under."""


@cache
def _address() -> dict[str, Any]:
    """What the browser finds postal addresses with (``detectors/address.py``): the names of
    the administrative divisions (one string, a space between names: 4,475 names are 58 KB
    as a JSON list, 49 KB so), the numerals and units around which a Chinese address is
    looked for and how far, and the detector's patterns translated."""
    return {
        "divisions": " ".join(address.division_names()),
        "numerals": address.NUMERAL_CHARS,
        "max_gap": address.MAX_GAP,
        "window": [address.WINDOW_BEFORE, address.WINDOW_AFTER],
        "detail_chars": address.DETAIL_CHARS,
        "en_head_reach": address.EN_HEAD_REACH,
        "en_flat_words": list(address.EN_FLAT_WORDS),
        "en_flat_parts": list(address.EN_FLAT_PARTS),
        "po_box_gate": list(address.PO_BOX_GATE),
        "patterns": {name: to_js(pattern.pattern) for name, pattern in _ADDRESS_PATTERNS.items()},
    }


@cache
def _window() -> dict[str, Any]:
    """The cross-message window's question-and-answer data (``split.py``): the rules a
    question names, in order (of two phrases at one start, the first rule's is named), then
    the cues by which it names a person (``names``, after the rules)."""
    return {
        "asked": [rule.rule for rule in CONTEXT_RULES],
        "names": list(ASKED_CUES),
        "ending": to_js(ENDING.pattern),
        "ending_chars": ENDING_CHARS,
        "lead_in": to_js(LEAD_IN.pattern),
    }


@cache
def _email() -> dict[str, Any]:
    """The e-mail detector's patterns (``detectors/email.py``) translated: ``address`` as
    typed or with a bracketed at, ``spelt`` spelt out or set apart by spaces, ``cued`` the
    pattern matched where each word for e-mail ends (its address in the group ``address``)."""
    return {
        "address": to_js(ADDRESS.pattern),
        "spelt": to_js(SPELT_ADDRESS.pattern),
        "cued": {cue: to_js(after.pattern) for cue, after in AFTER_CUE.items()},
    }


def _fold_entries(wanted: frozenset[str]) -> dict[str, str]:
    """Traditional -> Simplified for the characters that fold to one of ``wanted``."""
    return {trad: simp for trad, simp in _t2s_entries() if simp in wanted}


@cache
def _t2s_entries() -> tuple[tuple[str, str], ...]:
    """The normalisation table's Traditional -> Simplified entries a browser string can
    hold as one unit (the BMP), in code point order."""
    return tuple((chr(trad), simp) for trad, simp in sorted(tables().t2s.items()) if trad < 0x10000)


@cache
def _region(region: str) -> list[Any] | None:
    """[calling code, national prefix for parsing, general [pattern, lengths], types]."""
    meta = PhoneMetadata.metadata_for_region(region)
    if meta is None or meta.general_desc is None:
        return None
    types = []
    for name in _PHONE_TYPES:
        desc = getattr(meta, name)
        if desc is not None and desc.national_number_pattern:
            types.append([desc.national_number_pattern, list(desc.possible_length or ())])
    return [
        str(meta.country_code),
        meta.national_prefix_for_parsing or "",
        [meta.general_desc.national_number_pattern, list(meta.general_desc.possible_length)],
        types,
    ]


@cache
def _calling_codes() -> dict[str, list[list[Any]]]:
    """Calling code -> the general pattern and lengths of each of its regions."""
    out: dict[str, list[list[Any]]] = {}
    for code, regions in sorted(COUNTRY_CODE_TO_REGION_CODE.items()):
        patterns = []
        for region in regions:
            meta = PhoneMetadata.metadata_for_region_or_calling_code(code, region)
            if meta is not None and meta.general_desc is not None:
                desc = meta.general_desc
                patterns.append([desc.national_number_pattern, list(desc.possible_length)])
        if patterns:
            out[str(code)] = patterns
    return out


@cache
def _iban_formats() -> dict[str, list[Any]]:
    """Country -> [IBAN length, BBAN regex] from stdnum's IBAN registry."""
    classes = {"n": "[0-9]", "a": "[A-Z]", "c": "[A-Za-z0-9]"}
    out: dict[str, list[Any]] = {}
    for _, low, _high, props, _children in numdb.get("iban").prefixes:
        bban = props.get("bban")
        if not bban or len(low) != 2:
            continue
        parts = _IBAN_STRUCT.findall(bban)
        length = 4 + sum(int(n) for n, _ in parts)
        out[low] = [length, "".join(f"{classes[c]}{{{n}}}" for n, c in parts)]
    return out
