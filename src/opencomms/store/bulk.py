"""Set-based inserts through the driver itself: COPY on PostgreSQL, prepared executemany on
SQLite. SQLAlchemy's per-row parameter handling costs more than the insert itself for
thousands of rows.

Rows of one bulk insert often share most of their values (a send's tags, plan and schedule;
an event template's type and time). `Shared` rows carry those once: on SQLite they are
written into the statement as literals, since binding a parameter costs about as much as the
rest of the insert (10,000 message rows: 53 ms with all 22 columns bound, 27 ms with the 5
that differ), and on PostgreSQL each COPY record is completed with them.
"""

import sqlite3
from collections.abc import Iterator, Sequence
from functools import lru_cache
from itertools import chain
from typing import Any, NamedTuple

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection


class Shared(NamedTuple):
    """Rows of `table` whose `shared_columns` hold the same `shared` values in every row."""

    table: str
    columns: tuple[str, ...]  # each row's own, in the order of `rows`' tuples
    shared_columns: tuple[str, ...]
    shared: tuple[Any, ...]
    rows: list[tuple[Any, ...]]

    def records(self) -> list[tuple[Any, ...]]:
        """Whole rows, in the order of `columns + shared_columns`."""
        shared = self.shared
        return [row + shared for row in self.rows]


async def insert_records(
    conn: AsyncConnection, table: Table, columns: Sequence[str], records: list[tuple[Any, ...]]
) -> None:
    """Inserts `records` (tuples in `columns` order) in the caller's transaction."""
    if not records:
        return
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    if conn.dialect.name == "postgresql":
        await driver.copy_records_to_table(table.name, records=records, columns=list(columns))
        return
    await driver.executemany(insert_sql(table.name, tuple(columns)), records)


# Fewer rows than this are bound whole, with one statement text per table and columns, which
# the driver keeps prepared: a statement with literals is prepared anew, which costs more
# than binding a few rows' shared values.
LITERALS_FROM = 64


async def insert_shared(conn: AsyncConnection, batch: Shared) -> None:
    """Inserts a Shared batch in the caller's transaction."""
    if not batch.rows:
        return
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    if conn.dialect.name == "postgresql":
        columns = [*batch.columns, *batch.shared_columns]
        await driver.copy_records_to_table(batch.table, records=batch.records(), columns=columns)
    else:
        await driver.executemany(*_sqlite_insert(batch))


async def insert_all_shared(conn: AsyncConnection, batches: Sequence[Shared]) -> None:
    """Inserts Shared batches in the caller's transaction; on PostgreSQL those of one table
    whose records have one column order go in one COPY: the server ingests each part while
    the next is encoded, instead of answering a COPY per batch (10,000 message rows in 5
    batches: 75 ms against 89)."""
    if conn.dialect.name == "postgresql" and len({_copy_shape(b) for b in batches}) == 1:
        await copy_stream(conn, iter(batches))
        return
    for batch in batches:
        await insert_shared(conn, batch)


async def copy_stream(conn: AsyncConnection, batches: Iterator[Shared]) -> list[Shared]:
    """PostgreSQL: the records of `batches`, all of one table and column order, in one COPY
    in the caller's transaction, each batch taken from the iterator (and so made) while the
    server ingests the one before. Returns the batches taken.

    The loop waits meanwhile: asyncpg takes an async iterator a record at a time, which cost
    more than the overlap gains (10,000 message rows: 132 ms against 120 as one plain
    iterator, 138 made first on a thread). What a send can make is bounded (10,000
    recipients, a 20 MB body): tests/hardening/test_hostile_input.py holds a 19 MB send's
    stall under 50 ms."""
    taken: list[Shared] = []
    first = next(batches, None)
    if first is None:
        return taken
    shape = _copy_shape(first)

    def records() -> Iterator[tuple[Any, ...]]:
        for batch in chain([first], batches):
            if _copy_shape(batch) != shape:
                raise ValueError(f"a batch of {_copy_shape(batch)} in a COPY of {shape}")
            taken.append(batch)
            yield from batch.records()

    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    await driver.copy_records_to_table(shape[0], records=records(), columns=list(shape[1]))
    return taken


def _copy_shape(batch: Shared) -> tuple[str, tuple[str, ...]]:
    return batch.table, (*batch.columns, *batch.shared_columns)


def insert_shared_sync(conn: sqlite3.Connection, batch: Shared) -> None:
    """`insert_shared` on a plain sqlite3 connection (the group commit's)."""
    if batch.rows:
        conn.executemany(*_sqlite_insert(batch))


def _sqlite_insert(batch: Shared) -> tuple[str, list[tuple[Any, ...]]]:
    if len(batch.rows) < LITERALS_FROM:
        return insert_sql(batch.table, (*batch.columns, *batch.shared_columns)), batch.records()
    return sqlite_insert_sql(batch), batch.rows


@lru_cache(maxsize=64)
def insert_sql(table: str, columns: tuple[str, ...]) -> str:
    """An INSERT of one row binding every column, `?` placeholders (SQLite)."""
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"


def sqlite_insert_sql(batch: Shared) -> str:
    """An INSERT binding each row's own columns, with the shared values as literals."""
    names = ", ".join((*batch.columns, *batch.shared_columns))
    values = ", ".join(["?"] * len(batch.columns) + [sqlite_literal(v) for v in batch.shared])
    return f"INSERT INTO {batch.table} ({names}) VALUES ({values})"


def sqlite_literal(value: Any) -> str:
    """`value` as an SQLite literal, as SQLite's own quote() writes it (strings: quotes
    doubled; there are no escapes to get past). Only the types stored here."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        if "\x00" in value:  # the statement would end there; our JSON never holds one raw
            raise ValueError("NUL character in a shared value")
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no SQLite literal for {type(value).__name__}")
