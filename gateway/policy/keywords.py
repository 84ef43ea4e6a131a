"""Keyword rules: per-tenant term lists matched in one Aho-Corasick pass.

Terms are normalised exactly like messages (see ``normalize``) and matched against the
*compact* view, so ``銀 行 卡``, ``p.a.s.s.w.o.r.d`` and ``ｐａｓｓ`` all hit. To keep the
compact view from gluing neighbouring words together (``this cam`` -> ``scam``), a term whose
edge is a Latin letter or digit must sit on a word boundary of the spaced view; CJK edges
need no boundary (Chinese has no spaces).

File format (UTF-8): ``term<TAB>category<TAB>action`` per line, ``#`` starts a comment, blank
lines are ignored; the action may be empty (then the category's per-direction default
applies). The same format is used by operator files (``[policy] keyword_files``, read by
``load_keyword_file``) and by lists tenants upload as data (``lists.py``). Error messages name
the source and line, never the line's content: a file an operator mistyped could be any file,
and its content must not travel back in an error.
"""

from __future__ import annotations

import functools
import os
import stat
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from . import schema
from .errors import PolicyConfigError
from .normalize import NormalizedText, fold
from .phrases import Match, Phrases
from .types import ACTIONS, Action

BUILTIN_PATH = Path(__file__).with_name("data") / "default_keywords.txt"
BUILTIN_PINYIN_PATH = BUILTIN_PATH.with_name("default_keywords_pinyin.txt")
"""Generated from BUILTIN_PATH by ``python -m gateway.policy.lexicon_pinyin``."""
OPTIONAL_BUILTIN = frozenset(schema.OPTIONAL_CATEGORIES)
MAX_FILE_BYTES = 8 * 1024 * 1024
"""Operator keyword files larger than this are refused (they are read whole, at start-up)."""


@dataclass(frozen=True, slots=True)
class KeywordRule:
    """One term of a list; ``action=None`` defers to the category's per-direction action."""

    term: str
    category: str
    action: Action | None = None
    source: str = "settings"


@dataclass(frozen=True, slots=True)
class KeywordHit:
    """A keyword match, in VIEW coordinates."""

    rule: KeywordRule
    start: int
    end: int


def compact_term(term: str) -> str:
    return "".join(c for c in fold(term) if c.isalnum())


def parse_action(value: str, where: str) -> Action | None:
    """Validate an action name (empty means "category default")."""
    value = value.strip().lower()
    if not value:
        return None
    if value not in ACTIONS:
        raise PolicyConfigError(f"{where}: unknown action (use {', '.join(ACTIONS)})")
    return value


def parse_keyword_lines(lines: Iterable[str], source: str) -> list[KeywordRule]:
    """Parse list lines; errors name the source and line number."""
    rules: list[KeywordRule] = []
    for lineno, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) < 2 or len(cols) > 3:
            raise PolicyConfigError(
                f"{source}:{lineno}: expected 'term<TAB>category<TAB>action', got {len(cols)} "
                "column(s)"
            )
        term, category = cols[0].strip(), cols[1].strip().lower()
        if not schema.CATEGORY.fullmatch(category):
            raise PolicyConfigError(
                f"{source}:{lineno}: the category must be a lower-case name of 1-32 characters"
                " (a-z, 0-9, _)"
            )
        action = parse_action(cols[2] if len(cols) == 3 else "", f"{source}:{lineno}")
        rules.append(_checked(KeywordRule(term, category, action, source), f"{source}:{lineno}"))
    return rules


def _checked(rule: KeywordRule, where: str) -> KeywordRule:
    if len(rule.term) > schema.MAX_TERM_CHARS:
        raise PolicyConfigError(f"{where}: a term has at most {schema.MAX_TERM_CHARS} characters")
    if not compact_term(rule.term):
        raise PolicyConfigError(f"{where}: the term has no letters or digits")
    return rule


def load_keyword_file(path: str | os.PathLike[str]) -> list[KeywordRule]:
    """Read an OPERATOR keyword file (config file / built-in list; never a tenant's input).

    Only regular files up to ``MAX_FILE_BYTES`` are read (a FIFO or ``/dev/zero`` would block
    or never end); a missing file, a bad encoding or a bad line raises ``PolicyConfigError``.
    """
    path = Path(path)
    try:
        with open(path, "rb", opener=_nonblocking) as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise PolicyConfigError(f"{path}: not a regular file")
            if st.st_size > MAX_FILE_BYTES:
                raise PolicyConfigError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise PolicyConfigError(f"{path}: cannot read keyword file ({exc.strerror})") from exc
    if len(data) > MAX_FILE_BYTES:
        raise PolicyConfigError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
    return parse_keyword_bytes(data, str(path))


def _nonblocking(path: str, flags: int) -> int:
    """Open without blocking on a FIFO that has no writer (it is refused right after)."""
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


def parse_keyword_bytes(data: bytes, source: str) -> list[KeywordRule]:
    """Parse a UTF-8 list (a BOM is skipped); errors name ``source`` and the line only."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    path = source
    lines = data.split(b"\n")
    decoded: list[str] = []
    for lineno, raw in enumerate(lines, 1):
        try:
            decoded.append(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise PolicyConfigError(
                f"{path}:{lineno}: not valid UTF-8 (byte {exc.start + 1} of the line); "
                "save the file as UTF-8"
            ) from None
    return parse_keyword_lines(decoded, path)


@functools.cache
def _builtin_all() -> tuple[KeywordRule, ...]:
    return (*load_keyword_file(BUILTIN_PATH), *load_keyword_file(BUILTIN_PINYIN_PATH))


def builtin_rules(optional: Iterable[str] = ()) -> list[KeywordRule]:
    """The built-in lexicon: every default category plus the opt-in ones named in
    ``optional`` (``political``). Read once per process."""
    enabled = set(optional)
    return [
        r for r in _builtin_all() if r.category not in OPTIONAL_BUILTIN or r.category in enabled
    ]


def rules_from_settings(items: Iterable[object]) -> list[KeywordRule]:
    """Rules from ``policy.keywords = [{"term", "category", "action"}]``."""
    rules: list[KeywordRule] = []
    for i, item in enumerate(items):
        where = f"policy.keywords[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("term"), str):
            raise PolicyConfigError(f"{where}: expected an object with a string 'term'")
        extra = set(item) - {"term", "category", "action"}
        if extra:
            raise PolicyConfigError(
                f"{where}: unknown key {schema.shown(sorted(map(str, extra))[0])} "
                "(use term, category, action)"
            )
        category = item.get("category") or "custom"
        if not isinstance(category, str) or not schema.CATEGORY.fullmatch(category.strip().lower()):
            raise PolicyConfigError(f"{where}.category: a lower-case name of 1-32 characters")
        category = category.strip().lower()
        raw_action = item.get("action") or ""
        if not isinstance(raw_action, str):
            raise PolicyConfigError(f"{where}.action: expected a string")
        action = parse_action(raw_action, where)
        rules.append(_checked(KeywordRule(item["term"], category, action, "settings"), where))
    return rules


def edge_needs_boundary(ch: str) -> bool:
    """Latin-like letters/digits need word boundaries; CJK/kana/hangul never have them."""
    if not ch.isalnum():
        return False
    name = unicodedata.name(ch, "")
    return not name.startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL"))


@dataclass(frozen=True, slots=True)
class _Entry:
    rules: tuple[KeywordRule, ...]
    left: bool
    right: bool


class KeywordMatcher:
    """All of a tenant's terms in one automaton; built once, read-only afterwards."""

    def __init__(self, rules: Iterable[KeywordRule]) -> None:
        grouped: dict[str, list[KeywordRule]] = {}
        for rule in rules:
            grouped.setdefault(compact_term(rule.term), []).append(rule)
        self._phrases = Phrases(
            (key, _Entry(tuple(group), edge_needs_boundary(key[0]), edge_needs_boundary(key[-1])))
            for key, group in grouped.items()
            if key
        )
        self.size = len(self._phrases)

    def find(self, text: NormalizedText) -> list[KeywordHit]:
        """Every term occurrence, with view offsets, boundary-checked; the common no-match
        case costs one automaton pass."""
        if not self.size:
            return []
        compact = text.compact
        if not compact:
            return []
        matches = self._phrases.find(compact)
        if not matches:
            return []
        return list(self._checked(text, matches, self._phrases.values))

    @staticmethod
    def _checked(
        text: NormalizedText, matches: Iterable[Match], entries: tuple[_Entry, ...]
    ) -> Iterator[KeywordHit]:
        view = text.view
        for index, compact_start, compact_end in matches:
            entry = entries[index]
            start = text.compact_to_view(compact_start)
            end = text.compact_to_view(compact_end - 1) + 1
            if entry.left and start > 0 and edge_needs_boundary(view[start - 1]):
                continue
            if entry.right and end < len(view) and edge_needs_boundary(view[end]):
                continue
            for rule in entry.rules:
                yield KeywordHit(rule, start, end)
