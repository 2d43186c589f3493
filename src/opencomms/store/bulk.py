"""Set-based inserts through the driver itself: COPY on PostgreSQL, prepared executemany on
SQLite. SQLAlchemy's per-row parameter handling costs more than the insert itself for
thousands of rows (store/sends.py does the same for messages, overlapping chunks)."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection


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
    marks = ", ".join("?" for _ in columns)
    await driver.executemany(
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})", records
    )
