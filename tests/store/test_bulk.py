"""Shared-value inserts: what SQLite reads back is exactly what was given, whatever the text."""

import sqlite3

import pytest
from sqlalchemy import text

from opencomms.store import bulk
from opencomms.store.db import Database

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


async def test_batches_of_one_shape_and_of_several_all_read_back(db: Database) -> None:
    """On PostgreSQL, batches of one column order go in one COPY; others one by one."""
    same = [
        bulk.Shared("bulk_t", ("own",), ("shared", "more"), ("a", 1), [(1,), (2,)]),
        bulk.Shared("bulk_t", ("own",), ("shared", "more"), ("b", 2), [(3,)]),
    ]
    # The same columns in another order: its records must not join the others' COPY.
    other = bulk.Shared("bulk_t", ("own", "more"), ("shared",), ("c",), [(4, 3), (5, 4)])
    async with db.write() as conn:
        await conn.execute(
            text("CREATE TEMPORARY TABLE bulk_t (own INTEGER, shared TEXT, more INTEGER)")
        )
        await bulk.insert_all_shared(conn, same)
        await bulk.insert_all_shared(conn, [*same[:1], other])
        rows = (await conn.execute(text("SELECT own, shared, more FROM bulk_t"))).all()
    want = [
        (1, "a", 1),
        (2, "a", 1),
        (3, "b", 2),
        (1, "a", 1),
        (2, "a", 1),
        (4, "c", 3),
        (5, "c", 4),
    ]
    assert sorted(map(tuple, rows)) == sorted(want)
