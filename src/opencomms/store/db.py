"""Engines for both dialects, with the settings each needs to keep a 202's promise."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from opencomms.store.group_commit import GroupCommitter, Job

_READ_ONLY = "opencomms_read_only"


class DatabaseUrlError(ValueError):
    """The database URL names no dialect OpenComms supports."""


def normalize_url(url: str) -> str:
    """Maps the URLs users write to the async drivers OpenComms uses."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url.split("://", 1)[1]
    if url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        return url
    raise DatabaseUrlError(f"unsupported database URL {url!r}: use sqlite:/// or postgresql://")


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database)


@dataclass(frozen=True)
class Database:
    engine: AsyncEngine
    dialect: str
    # SQLite has one writer at a time. Queuing this process's writers here, in order,
    # beats letting them collide on the file lock, where the losers sleep and retry.
    _write_turn: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    # SQLite files: writes that may share a transaction (store/group_commit.py).
    _group: GroupCommitter | None = field(default=None, repr=False)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction; on SQLite it takes the write lock up front (BEGIN IMMEDIATE)."""
        if not self.is_sqlite:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_turn, self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read transaction: a consistent snapshot that never blocks writers."""
        async with self.engine.connect() as conn:
            await conn.execution_options(**{_READ_ONLY: True})
            async with conn.begin():
                yield conn

    async def grouped(self, job: Job) -> Any:
        """Runs `job(sqlite3_connection)` in a write transaction it may share with other
        jobs waiting at the same time, one commit for all (SQLite files only); returns its
        result once committed."""
        if self._group is None:
            raise RuntimeError("group commit needs a SQLite database file")
        return await self._group.run(job)

    @property
    def can_group(self) -> bool:
        return self._group is not None

    async def dispose(self) -> None:
        if self._group is not None:
            await self._group.aclose()
        await self.engine.dispose()


def open_database(url: str, *, pool_size: int | None = None) -> Database:
    """An engine for the URL. PostgreSQL's pool holds `pool_size` (20) connections and never
    more: past it requests queue for a connection instead of opening (and closing) a session
    each, and nothing pings a connection before use (a round trip per request); a
    connection an error breaks is dropped from the pool when it fails."""
    full_url = normalize_url(url)
    dialect = make_url(full_url).get_backend_name()
    if dialect == "sqlite":
        # Each aiosqlite connection is a thread; one process rarely reads with more at once.
        engine = create_async_engine(full_url, pool_size=pool_size or 10, max_overflow=0)
        _configure_sqlite(engine)
        turn = asyncio.Lock()
        path = make_url(full_url).database
        group = GroupCommitter(Path(path), turn) if path and path != ":memory:" else None
        return Database(engine=engine, dialect=dialect, _write_turn=turn, _group=group)
    engine = create_async_engine(full_url, pool_size=pool_size or 20, max_overflow=0)
    return Database(engine=engine, dialect=dialect)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins (see on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit survives power loss, which is what a 202 promises.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock first, so two writers never deadlock on an upgrade.
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
