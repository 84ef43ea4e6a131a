"""Python regular expressions written as JavaScript ones, for the end engines' document.

The context rules (``detectors/context.py``) are Python patterns with possessive quantifiers
and Unicode classes. The browser engine (``gateway/web/policy.js``) used to carry its own
copies of them, and a cue added on one side could miss the other. The end document now
carries each rule's pattern, translated here from the compiled Python parse tree, so both
engines run the same pattern and a tenant's signature covers it.

Hand-written: no maintained library translates Python's regex dialect to ECMAScript (the
``js-regex`` package goes the other way). The translation keeps the meaning exactly for the
constructs the policy uses and refuses every other construct, so a new rule written with one
of those fails at build time instead of meaning something else in the browser:

* possessive quantifiers and atomic groups become ``(?=(?<aN>X))\\k<aN>`` (a look-ahead is
  atomic in JavaScript, the back-reference consumes what it matched);
* ``\\s`` becomes the exact set of characters Python's ``str.isspace`` accepts (JavaScript's
  ``\\s`` adds U+FEFF and lacks U+001C..U+001F), ``\\d`` becomes ``\\p{Nd}``;
* ``$`` becomes ``(?=\\n?$)`` (Python's also matches before a final newline) and ``\\b`` a
  look-around pair over Python's word characters (JavaScript's ``\\b`` is ASCII);
* ``.`` becomes ``[^\\n]`` (JavaScript's dot also stops at ``\\r``, U+2028 and U+2029);
* ``[^\\W…]`` (a word character but the others) becomes a negative look-ahead at the
  others and a word character;
* ``[\\W_]`` becomes ``[^\\p{L}\\p{N}]`` (Python's ``\\w`` is exactly letters, numbers and
  ``_``; JavaScript's is ASCII);
* groups other than the named ones the ends read (``_KEPT_GROUPS``) are written
  non-capturing, and a back-reference to a named one is written ``\\k<name>``.

The output is for the ``u`` flag (``new RegExp(source, 'gdu')``).
"""

from __future__ import annotations

import sys
from functools import cache
from itertools import count
from re import _constants as c  # type: ignore[attr-defined]
from re import _parser
from typing import Any

_SYNTAX = frozenset("^$\\.*+?()[]{}|/")
_CLASS_SYNTAX = frozenset("\\]-[^")
_KEPT_GROUPS = frozenset({"value", "address", "estate", "flat", "cue", "name", "latin", "surname"})
"""The groups written named (every other group is written non-capturing): what the ends
read of a match, and what a back-reference names."""
_WORD = "[\\p{L}\\p{N}_]"
_WORD_BOUNDARY = f"(?:(?<={_WORD})(?!{_WORD})|(?<!{_WORD})(?={_WORD}))"
"""Python's ``\\b``: between a word character (exactly ``\\p{L}``, ``\\p{N}`` and ``_``, see
``[\\W_]`` below) and anything else; JavaScript's ``\\b`` knows ASCII words only."""


_NOT_WORD_NOR_UNDERSCORE = list(_parser.parse(r"[\W_]")[0][1])


class UntranslatableRegex(ValueError):
    """A pattern uses a construct whose JavaScript meaning differs (or is not written here)."""


def to_js(pattern: str) -> str:
    """``pattern`` (a Python ``str`` pattern without flags) as an ECMAScript source."""
    parsed = _parser.parse(pattern)
    if parsed.state.flags & ~(c.SRE_FLAG_UNICODE):
        raise UntranslatableRegex(f"flags are not translated: {pattern!r}")
    names = {number: name for name, number in parsed.state.groupdict.items()}
    return _Writer(names).sequence(parsed)


class _Writer:
    """One translation: the group names of its pattern and its atomic-group counter."""

    def __init__(self, names: dict[int, str]) -> None:
        self._names = names
        self._atomic = count(1)

    def sequence(self, items: Any) -> str:
        return "".join(self.node(op, av) for op, av in items)

    def node(self, op: Any, av: Any) -> str:
        if op is c.LITERAL:
            return _literal(av, _SYNTAX)
        if op is c.NOT_LITERAL:
            return "[^" + _literal(av, _CLASS_SYNTAX) + "]"
        if op is c.ANY:
            return "[^\\n]"
        if op is c.IN:
            return _char_class(av)
        if op is c.BRANCH:
            return "(?:" + "|".join(self.sequence(branch) for branch in av[1]) + ")"
        if op is c.SUBPATTERN:
            group, add_flags, del_flags, body = av
            if add_flags or del_flags:
                raise UntranslatableRegex("inline flags are not translated")
            name = self._names.get(group) if group is not None else None
            if name in _KEPT_GROUPS:
                return f"(?<{name}>" + self.sequence(body) + ")"
            return "(?:" + self.sequence(body) + ")"
        if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
            low, high, body = av
            repeated = self._quantified(body) + _quantifier(low, high)
            if op is c.MIN_REPEAT:
                return repeated + "?"
            if op is c.POSSESSIVE_REPEAT:
                return self._atomic_of(repeated)
            return repeated
        if op is c.ATOMIC_GROUP:
            return self._atomic_of(self.sequence(av))
        if op in (c.ASSERT, c.ASSERT_NOT):
            direction, body = av
            sign = "=" if op is c.ASSERT else "!"
            behind = "<" if direction < 0 else ""
            return f"(?{behind}{sign}" + self.sequence(body) + ")"
        if op is c.AT and av in (c.AT_BEGINNING, c.AT_BEGINNING_STRING):
            return "^"  # the same without the MULTILINE flag, which is refused
        if op is c.AT and av is c.AT_END_STRING:
            return "$"
        if op is c.AT and av is c.AT_END:
            return "(?=\\n?$)"  # Python's $ also matches before a final newline
        if op is c.AT and av is c.AT_BOUNDARY:
            return _WORD_BOUNDARY
        if op is c.GROUPREF and self._names.get(av) in _KEPT_GROUPS:
            return f"\\k<{self._names[av]}>"
        raise UntranslatableRegex(f"{op} is not translated")

    def _quantified(self, body: Any) -> str:
        """The repeated item as one atom (a single node that is one, or a group)."""
        text = self.sequence(body)
        if len(body) == 1 and body[0][0] in (c.LITERAL, c.NOT_LITERAL, c.ANY, c.IN):
            return text
        if len(body) == 1 and body[0][0] in (c.BRANCH, c.SUBPATTERN):
            return text  # written as a group already
        return "(?:" + text + ")"

    def _atomic_of(self, text: str) -> str:
        name = f"a{next(self._atomic)}"
        return f"(?=(?<{name}>{text}))\\k<{name}>"


def _quantifier(low: int, high: int) -> str:
    if high is c.MAXREPEAT:
        return {0: "*", 1: "+"}.get(low, f"{{{low},}}")
    if (low, high) == (0, 1):
        return "?"
    return f"{{{low}}}" if low == high else f"{{{low},{high}}}"


def _char_class(items: Any) -> str:
    if sorted(map(str, items)) == sorted(map(str, _NOT_WORD_NOR_UNDERSCORE)):
        # [\W_]: neither a letter nor a digit. Python's \w is exactly \p{L}, \p{N} and
        # "_" (every code point compared), JavaScript's \w is ASCII only.
        return "[^\\p{L}\\p{N}]"
    not_word = (c.CATEGORY, c.CATEGORY_NOT_WORD)
    if len(items) > 2 and items[0] == (c.NEGATE, None) and not_word in items:
        # [^\W…]: a word character that is none of the others ("[^\W\d…]": a letter that
        # is not one of the listed characters)
        others = [item for item in items[1:] if item != not_word]
        return f"(?:(?!{_char_class(others)}){_WORD})"
    out = []
    for op, av in items:
        if op is c.NEGATE:
            out.append("^")
        elif op is c.LITERAL:
            out.append(_literal(av, _CLASS_SYNTAX))
        elif op is c.RANGE:
            out.append(_literal(av[0], _CLASS_SYNTAX) + "-" + _literal(av[1], _CLASS_SYNTAX))
        elif op is c.CATEGORY and av is c.CATEGORY_SPACE:
            out.append(_space_class())
        elif op is c.CATEGORY and av is c.CATEGORY_DIGIT:
            out.append("\\p{Nd}")
        else:
            raise UntranslatableRegex(f"{op} {av} in a class is not translated")
    return "[" + "".join(out) + "]"


@cache
def _space_class() -> str:
    """The characters of Python's ``\\s`` (``str.isspace``), written for a class."""
    spaces = [code for code in range(sys.maxunicode + 1) if chr(code).isspace()]
    runs: list[list[int]] = []
    for code in spaces:
        if runs and runs[-1][1] == code - 1:
            runs[-1][1] = code
        else:
            runs.append([code, code])
    return "".join(
        _literal(low, _CLASS_SYNTAX) + ("" if low == high else "-" + _literal(high, _CLASS_SYNTAX))
        for low, high in runs
    )


def _literal(code: int, syntax: frozenset[str]) -> str:
    char = chr(code)
    if char in syntax:
        return "\\" + char
    if code < 0x20 or 0x7F <= code < 0xA0 or char in "\u2028\u2029" or char.isspace():
        return f"\\u{{{code:x}}}"
    return char
