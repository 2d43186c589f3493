"""Shared-value inserts: what SQLite reads back is exactly what was given, whatever the text."""

import sqlite3

import pytest

from opencomms.store import bulk

AWKWARD = [
    "it's",
    "''; DROP TABLE t; --",
    'quote " and \\ backslash',
    "naïve ✓ \U0001f600",
    "\x01i",
]


@pytest.mark.parametrize("count", [2, bulk.LITERALS_FROM])  # bound whole, then as literals
@pytest.mark.parametrize("value", [*AWKWARD, None, True, False, 0, -7, 2**62, ""])
def test_a_shared_value_reads_back_as_given(value: object, count: int) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (own, shared)")
    batch = bulk.Shared("t", ("own",), ("shared",), (value,), [(i,) for i in range(count)])
    bulk.insert_shared_sync(conn, batch)
    stored = int(value) if isinstance(value, bool) else value
    rows = conn.execute("SELECT own, shared FROM t ORDER BY own").fetchall()
    assert rows == [(i, stored) for i in range(count)]
    # As SQLite's own quote() writes it.
    assert bulk.sqlite_literal(value) == conn.execute("SELECT quote(?)", (value,)).fetchone()[0]


def test_values_sqlite_cannot_take_as_literals_are_refused() -> None:
    with pytest.raises(ValueError):
        bulk.sqlite_literal("a\x00b")
    with pytest.raises(TypeError):
        bulk.sqlite_literal(1.5)


def test_records_put_the_shared_values_after_each_rows_own() -> None:
    batch = bulk.Shared("t", ("a", "b"), ("c",), ("z",), [(1, 2), (3, 4)])
    assert batch.records() == [(1, 2, "z"), (3, 4, "z")]
