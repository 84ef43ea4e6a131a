"""Statements written once for both engines, and the two dialects that render them.

Every statement of the store is written one time, in SQLite's spelling, with ``?``
placeholders (the way Synapse writes its SQL). A :class:`Dialect` renders it for its
engine: PostgreSQL gets ``$1..$n`` and the few words that really differ, named in braces:

``{greatest}``
    the two-argument maximum (``MAX`` in SQLite, ``GREATEST`` in PostgreSQL);
``{same_as}``
    null-safe equality (``IS`` / ``IS NOT DISTINCT FROM``);
``{lock}``, ``{lock_shared_key}``
    row locks (``FOR UPDATE`` / ``FOR NO KEY UPDATE``). SQLite has none and needs none:
    its writes run one at a time on one connection inside ``BEGIN IMMEDIATE``.

A store method that needs several statements in one transaction is written once as a
*program*: a generator that yields :class:`Query` objects and receives each one's
result. Each backend drives programs with its own driver, synchronously on SQLite's
writer thread (so group commit keeps batching them) or awaiting asyncpg. The logic of a
transaction is therefore not repeated per engine; only what truly differs (the hot
``append_message``, outbox claiming) stays in ``sqlite.py`` and ``postgres.py``.

Values travel as bound parameters, never in the text. JSON columns (``JSONB`` in
PostgreSQL, text in SQLite) take their values wrapped in :class:`Json` so each engine
encodes them its own way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, TypeVar

T = TypeVar("T")

Shape = Literal["rows", "row", "count", "many"]


class Json(NamedTuple):
    """A value bound to a JSON column (text in SQLite, JSONB in PostgreSQL)."""

    value: Any


@dataclass(frozen=True, slots=True)
class Query:
    """One statement with its arguments and what its caller wants back.

    ``shape``: ``rows`` (all rows), ``row`` (the first row or None), ``count`` (rows
    changed), ``many`` (the statement run once per argument tuple, no result).
    ``write`` routes a lone statement to the writer (SQLite keeps a read-only reader).
    """

    template: str
    args: tuple[Any, ...]
    shape: Shape
    write: bool


def where_given(clauses: list[tuple[str, Any]]) -> tuple[str, list[Any]]:
    """`` WHERE a = ? AND ...`` over the clauses whose value is not None, and their values:
    the filters a listing was given, each optional."""
    used = [(clause, value) for clause, value in clauses if value is not None]
    if not used:
        return "", []
    return " WHERE " + " AND ".join(c for c, _ in used), [v for _, v in used]


def read_rows(template: str, *args: Any) -> Query:
    """A SELECT whose rows are all wanted."""
    return Query(template, args, "rows", False)


def read_row(template: str, *args: Any) -> Query:
    """A SELECT whose first row (or None) is wanted."""
    return Query(template, args, "row", False)


def write(template: str, *args: Any) -> Query:
    """An INSERT/UPDATE/DELETE; its result is the number of rows it changed."""
    return Query(template, args, "count", True)


def write_rows(template: str, *args: Any) -> Query:
    """A write with ``RETURNING``; its result is the rows returned."""
    return Query(template, args, "rows", True)


def write_row(template: str, *args: Any) -> Query:
    """A write with ``RETURNING``; its result is the first row returned, or None."""
    return Query(template, args, "row", True)


def write_many(template: str, arg_rows: Sequence[tuple[Any, ...]]) -> Query:
    """One write run for each argument tuple (``executemany``)."""
    return Query(template, tuple(arg_rows), "many", True)


Program = Generator[Query, Any, T]
"""A transaction written once: yields queries, receives their results, returns a value."""


def placeholders(n: int) -> str:
    """``?, ?, ?`` for an ``IN (...)`` list of ``n`` values (callers ensure ``n > 0``)."""
    return ", ".join("?" * n)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _ident(value: Any) -> Any:
    return value


def _numbered(text: str) -> str:
    """``?`` → ``$1..$n`` outside quoted literals."""
    out: list[str] = []
    n = 0
    quoted = False
    for ch in text:
        if ch == "'":
            quoted = not quoted
        elif ch == "?" and not quoted:
            n += 1
            out.append(f"${n}")
            continue
        out.append(ch)
    return "".join(out)


@dataclass(frozen=True)
class Dialect:
    """How one engine spells the statements and binds JSON values."""

    name: Literal["sqlite", "postgres"]
    words: dict[str, str]
    numbered: bool
    dump_json: Callable[[Any], Any]
    load_json: Callable[[Any], Any]
    _cache: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def render(self, template: str) -> str:
        """The statement in this engine's spelling (cached: templates are constants)."""
        text = self._cache.get(template)
        if text is None:
            text = template.format_map(self.words) if "{" in template else template
            if self.numbered:
                text = _numbered(text)
            self._cache[template] = text
        return text

    def bind(self, args: tuple[Any, ...]) -> tuple[Any, ...]:
        """Arguments as the driver takes them (JSON values encoded for this engine)."""
        return tuple(self.dump_json(a.value) if isinstance(a, Json) else a for a in args)


SQLITE = Dialect(
    name="sqlite",
    words={
        "greatest": "MAX",
        "same_as": "IS",
        "lock": "",
        "lock_shared_key": "",
        "lock_skip_locked": "",
    },
    numbered=False,
    dump_json=_dumps,
    load_json=json.loads,
)

# asyncpg's JSONB codec (installed per connection by the PostgreSQL store) encodes and
# decodes JSON itself, so values pass through unchanged.
POSTGRES = Dialect(
    name="postgres",
    words={
        "greatest": "GREATEST",
        "same_as": "IS NOT DISTINCT FROM",
        "lock": " FOR UPDATE",
        "lock_shared_key": " FOR NO KEY UPDATE",
        "lock_skip_locked": " FOR UPDATE SKIP LOCKED",
    },
    numbered=True,
    dump_json=_ident,
    load_json=_ident,
)


def drive(program: Program[T], execute: Callable[[Query], Any]) -> T:
    """Run a program synchronously, each query through ``execute`` (SQLite's driver)."""
    try:
        query = next(program)
        while True:
            query = program.send(execute(query))
    except StopIteration as done:
        return done.value


def single(query: Query) -> Program[Any]:
    """A program of one statement, for callers that take programs."""
    return (yield query)
