"""Constant SQL straight to the driver, for the hot reads (api/fast_reads.py).

Through SQLAlchemy a one-row read costs a pool checkout, a compiled statement, a result
wrapper and, on SQLite, one thread hop per call (BEGIN, execute, fetch, ROLLBACK); on
PostgreSQL a BEGIN and a ROLLBACK round trip around the query. Here a read is a list of
statements written once, with `?` placeholders:

- SQLite: the whole read runs in one hop to a small thread pool, each thread with its own
  `sqlite3` connection (query-only); several statements share one read transaction, so they
  see one snapshot, as `Database.read()` does.
- PostgreSQL: a pool of asyncpg connections of its own; its prepared statements are cached
  per connection, so the constant SQL is parsed and planned once. One statement runs alone
  (it is its own snapshot); several run in one read-only repeatable-read transaction.
"""

import asyncio
import re
import sqlite3
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import exc

if TYPE_CHECKING:  # imported where a pool opens: a server on SQLite never loads asyncpg
    import asyncpg

Statement = tuple[str, Sequence[Any]]
Rows = list[Sequence[Any]]

SQLITE_THREADS = 4
PG_POOL_SIZE = 10
_PLACEHOLDER = re.compile(r"\?")


@lru_cache(maxsize=256)
def to_postgres(sql: str) -> str:
    """`?` placeholders as asyncpg's `$1, $2...` (the SQL here holds no `?` in literals)."""
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


class SqliteReader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA query_only=1")
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        return conn

    def _run(self, statements: Sequence[Statement]) -> list[Rows]:
        conn = self._conn()
        if len(statements) == 1:
            sql, args = statements[0]
            return [conn.execute(sql, args).fetchall()]
        conn.execute("BEGIN")
        try:
            return [conn.execute(sql, args).fetchall() for sql, args in statements]
        finally:
            conn.execute("COMMIT")

    async def run(self, statements: Sequence[Statement]) -> list[Rows]:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(SQLITE_THREADS, thread_name_prefix="sqlite-read")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._run, statements)
        except sqlite3.OperationalError as error:
            # A file gone, locked past the timeout or unreadable: what store/db.py treats as
            # unavailable (a 503), as it does for the same error through SQLAlchemy.
            raise exc.OperationalError(statements[0][0], None, error) from error

    async def aclose(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(None, executor.shutdown)
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
        self._local = threading.local()


class PostgresReader:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._pool: asyncpg.Pool | None = None
        self._opening: asyncio.Lock | None = None

    async def _get_pool(self) -> "asyncpg.Pool":
        import asyncpg

        if self._pool is not None:
            return self._pool
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self.dsn, min_size=1, max_size=PG_POOL_SIZE, reset=_nothing_to_reset
                )
        return self._pool

    async def run(self, statements: Sequence[Statement]) -> list[Rows]:
        pool = await self._get_pool()
        async with pool.acquire() as conn:
            if len(statements) == 1:
                sql, args = statements[0]
                return [await conn.fetch(to_postgres(sql), *args)]
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                return [await conn.fetch(to_postgres(sql), *args) for sql, args in statements]

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()


async def _nothing_to_reset(conn: "asyncpg.Connection") -> None:
    """The pool's reset on release, for connections that only ever run SELECTs: no session
    state to undo, so asyncpg's default reset query (a round trip per read) is skipped. The
    pool still ends any transaction left open before a connection goes back."""


DirectReader = SqliteReader | PostgresReader
