"""Statements written once in SQLite's spelling render correctly for PostgreSQL
(gateway/store/sql.py), and programs drive the same way on both engines."""

from __future__ import annotations

import pytest

from gateway.store.sql import (
    POSTGRES,
    SQLITE,
    Json,
    Program,
    drive,
    placeholders,
    read_row,
    write,
)


def test_placeholders_are_numbered_outside_quoted_literals_only() -> None:
    template = "UPDATE t SET a = ?, note = 'what? why?' WHERE b = ? AND c LIKE ? ESCAPE '\\'"
    assert POSTGRES.render(template) == (
        "UPDATE t SET a = $1, note = 'what? why?' WHERE b = $2 AND c LIKE $3 ESCAPE '\\'"
    )
    assert SQLITE.render(template) == template


@pytest.mark.parametrize(
    ("word", "sqlite", "postgres"),
    [
        ("{greatest}(a, ?)", "MAX(a, ?)", "GREATEST(a, $1)"),
        ("a {same_as} ?", "a IS ?", "a IS NOT DISTINCT FROM $1"),
        ("SELECT 1 FROM t WHERE id = ?{lock}", "SELECT 1 FROM t WHERE id = ?", None),
        ("WHERE id = ?{lock_shared_key}", "WHERE id = ?", "WHERE id = $1 FOR NO KEY UPDATE"),
    ],
)
def test_dialect_words(word: str, sqlite: str, postgres: str | None) -> None:
    assert SQLITE.render(word) == sqlite
    if postgres is not None:
        assert POSTGRES.render(word) == postgres
    else:
        assert POSTGRES.render(word).endswith("$1 FOR UPDATE")


def test_json_values_are_encoded_by_sqlite_and_passed_through_to_asyncpg() -> None:
    args = (1, Json({"é": [1, 2]}), "x")
    assert SQLITE.bind(args) == (1, '{"é":[1,2]}', "x")
    assert POSTGRES.bind(args) == (1, {"é": [1, 2]}, "x")


def test_placeholder_lists() -> None:
    assert placeholders(3) == "?, ?, ?"
    assert POSTGRES.render(f"SELECT 1 WHERE x IN ({placeholders(3)})") == (
        "SELECT 1 WHERE x IN ($1, $2, $3)"
    )


def test_a_program_receives_each_result_and_returns_its_value() -> None:
    seen: list[str] = []

    def program() -> Program[int]:
        row = yield read_row("SELECT n FROM t WHERE id = ?", "a")
        changed = yield write("UPDATE t SET n = ? WHERE id = ?", row["n"] + 1, "a")
        return int(changed)

    def execute(query):  # type: ignore[no-untyped-def]
        seen.append(query.template)
        return {"n": 41} if query.shape == "row" else 1

    assert drive(program(), execute) == 1
    assert seen == ["SELECT n FROM t WHERE id = ?", "UPDATE t SET n = ? WHERE id = ?"]


def test_an_error_inside_a_program_propagates() -> None:
    def program() -> Program[None]:
        yield write("DELETE FROM t")
        raise LookupError("gone")

    with pytest.raises(LookupError, match="gone"):
        drive(program(), lambda query: 0)
