"""Secrets: one-time codes, passwords, API keys and private key blocks.

Codes and passwords are only secrets in context ("your code is 123456", "密码：abc123"), so
they are found by a context phrase followed by a value; API keys are found by the shapes
providers give them. A password value must contain a digit or a symbol, so "the password is
wrong" is not masked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..phrases import Phrases, union_of
from .base import Hit, ScanContext
from .context import ContextRule, context_rule

_OTP_PHRASES = (
    "verification code",
    "security code",
    "login code",
    "sms code",
    "one-time code",
    "one time code",
    "one-time password",
    "otp",
    "passcode",
    "auth code",
    "code is",
    "pin",
    "验证码",
    "校验码",
    "动态码",
    "动态密码",
    "短信码",
    "确认码",
    "安全码",
)
_PASSWORD_PHRASES = (
    "password",
    "passwd",
    "pwd",
    "pass word",
    "密码",
    "口令",
    "登录密码",
    "支付密码",
)
_KEY_PHRASES = (
    "api key",
    "api_key",
    "apikey",
    "api-key",
    "secret key",
    "secret_key",
    "access token",
    "access_token",
    "auth token",
    "client secret",
    "client_secret",
    "密钥",
    "令牌",
)

CONTEXT_RULES: tuple[ContextRule, ...] = (
    context_rule(
        "otp",
        "otp.context",
        _OTP_PHRASES,
        r"[^0-9a-z\n]{0,12}+(?:(?:is|was|are)[^0-9a-z\n]{0,4}+)?+",
        r"(?<![0-9])[0-9]{4,8}+(?![0-9])",
    ),
    context_rule(
        "password",
        "password.context",
        _PASSWORD_PHRASES,
        r"(?:\s{0,3}+(?:is|was|=|:|：|是|为|為)){1,2}+\s{0,3}+",
        r"[^\s,，。;；!！?？\"'“”]{4,}+",
        needs_non_letter=True,
    ),
    context_rule(
        "api_key",
        "api_key.context",
        _KEY_PHRASES,
        r"\s{0,3}+(?:is|=|:|：|是|为)\s{0,3}+[\"']?+",
        r"[0-9a-z_\-./+=]{16,256}+",
    ),
)

_KEY_SHAPES = re.compile(
    r"(?<![0-9a-z])(?:"
    r"akia[0-9a-z]{16}"
    r"|gh[pousr]_[0-9a-z]{36,251}+"
    r"|xox[abprs]-[0-9a-z\-]{10,200}+"
    r"|[sr]k_(?:live|test)_[0-9a-z]{16,200}+"
    r"|aiza[0-9a-z_\-]{35}"
    r"|sk-[0-9a-z_\-]{20,200}+"
    r"|eyj[0-9a-z_\-]{8,2000}+\.eyj[0-9a-z_\-]{8,4000}+\.[0-9a-z_\-]{8,2000}+"
    r")(?![0-9a-z])"
)
_KEY_TRIGGERS = ("akia", "gh", "xox", "k_live_", "k_test_", "aiza", "sk-", "eyj")
_KEY_LITERALS = (
    "akia",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "xoxa-",
    "xoxb-",
    "xoxp-",
    "xoxr-",
    "xoxs-",
    "k_live_",
    "k_test_",
    "aiza",
    "sk-",
    "eyj",
)
"""A literal inside every ``_KEY_SHAPES`` match (tighter than the triggers: "gh" is in
"night")."""

_PEM_BEGIN = re.compile(r"-----begin (?:[a-z0-9]{1,12}+ ){0,3}?private key(?: block)?+-----")
_PEM_END = re.compile(r"-----end (?:[a-z0-9]{1,12}+ ){0,3}?private key(?: block)?+-----")


class SecretsDetector:
    """Codes, passwords, API keys and private keys."""

    kinds = ("otp", "password", "api_key", "private_key")
    triggers = ()
    gate_phrases = (
        *(t for rule in CONTEXT_RULES for t in rule.triggers),
        *_KEY_LITERALS,
        "-----begin",
    )
    exclusive = True

    def scan(self, ctx: ScanContext) -> Iterator[Hit]:
        """Yield secret values (the value only, never the context phrase)."""
        view = ctx.view
        spans = ctx.phrase_spans(_GATE_SET)  # where the engine's gate found our phrases
        if spans is None:
            found = union_of(_TRIGGERS, view)
        else:
            found = 0
            for a, b in spans:
                found |= _GATE_BITS[view[a:b]]
        for bit, rule in enumerate(CONTEXT_RULES):
            if found >> bit & 1:
                mine = None
                if spans is not None:
                    mine = [(a, b) for a, b in spans if view[a:b] in _RULE_SETS[bit]]
                yield from rule.scan(view, mine)
        if found & _KEY_BIT:
            for m in _KEY_SHAPES.finditer(view):
                yield Hit("api_key", m.start(), m.end(), "api_key.shape")
        if found & _PEM_BIT:
            pos = 0
            while (begin := _PEM_BEGIN.search(view, pos)) is not None:
                end = _PEM_END.search(view, begin.end())
                stop = end.end() if end is not None else len(view)
                yield Hit("private_key", begin.start(), stop, "private_key.pem")
                pos = stop


def _trigger_bits(key_phrases: tuple[str, ...]) -> dict[str, int]:
    """Each trigger phrase -> the parts of ``scan`` it opens: bit k for ``CONTEXT_RULES[k]``,
    then API keys (opened by ``key_phrases``), then private keys."""
    bits: dict[str, int] = {}
    for k, rule in enumerate(CONTEXT_RULES):
        for phrase in rule.triggers:
            bits[phrase] = bits.get(phrase, 0) | 1 << k
    for phrase in key_phrases:
        bits[phrase] = bits.get(phrase, 0) | _KEY_BIT
    bits["-----begin"] = bits.get("-----begin", 0) | _PEM_BIT
    return bits


_KEY_BIT = 1 << len(CONTEXT_RULES)
_PEM_BIT = _KEY_BIT << 1
_TRIGGERS = Phrases(_trigger_bits(_KEY_TRIGGERS).items())
"""Every trigger in one automaton: one pass says which rules can match (instead of an ``in``
test per phrase, about 40 per message), when the engine's gate matches are not at hand."""
_RULE_SETS = tuple(frozenset(rule.triggers) for rule in CONTEXT_RULES)
_GATE_BITS = _trigger_bits(_KEY_LITERALS)
"""Each of the detector's gate phrases -> the parts of ``scan`` it opens, for reading the
engine's gate matches (the key literals, tighter than ``_KEY_TRIGGERS``, open the keys)."""
_GATE_SET = frozenset(_GATE_BITS)
