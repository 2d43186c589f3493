"""Planner statistics kept fresh after bulk inserts, without relying on autovacuum.

PostgreSQL plans from statistics that only ANALYZE (or autovacuum, which may be off) writes.
A table bulk-loaded since then looks nearly empty to the planner, which then scans and sorts
every row of an account for a 50-row page. So the accept path reports what it inserted, and
past the same threshold autovacuum uses (10% of the table, at least 10,000 rows) this keeps
an ANALYZE running in the background, one at a time, never in a request's way. SQLite plans
these reads well without statistics.
"""

import asyncio
import logging

from sqlalchemy import text

from opencomms.store.db import Database

log = logging.getLogger("opencomms.store")

MIN_ROWS = 10_000
FRACTION = 0.1


class StatsKeeper:
    def __init__(self, db: Database, *, min_rows: int = MIN_ROWS) -> None:
        self.db = db
        self.min_rows = min_rows
        self._pending: dict[str, int] = {}  # rows inserted per table since its last ANALYZE
        self._known_rows: dict[str, float] = {}  # the table's size at its last ANALYZE
        self._task: asyncio.Task[None] | None = None

    def inserted(self, table: str, rows: int) -> None:
        """Notes committed inserts; starts an ANALYZE in the background when one is due."""
        if self.db.is_sqlite:
            return
        self._pending[table] = self._pending.get(table, 0) + rows
        if self._task is None or self._task.done():
            due = [t for t in self._pending if self._is_due(t)]
            if due:
                self._task = asyncio.create_task(self._analyze(due))

    def _is_due(self, table: str) -> bool:
        threshold = max(self.min_rows, FRACTION * self._known_rows.get(table, 0.0))
        return self._pending.get(table, 0) >= threshold

    async def _analyze(self, tables: list[str]) -> None:
        for table in tables:
            self._pending[table] = 0
            try:
                async with self.db.engine.connect() as conn:
                    await conn.execute(text(f"ANALYZE {table}"))
                    size = await conn.scalar(
                        text("SELECT reltuples FROM pg_class WHERE relname = :t"), {"t": table}
                    )
                    await conn.commit()
                self._known_rows[table] = float(size or 0.0)
            except Exception:
                # Stale statistics cost speed, never correctness: try again on the next insert.
                log.warning("ANALYZE %s failed; retried after the next bulk insert", table)

    async def wait(self) -> None:
        """Waits for the ANALYZE in progress, if any (tests, shutdown)."""
        if self._task is not None:
            await self._task
