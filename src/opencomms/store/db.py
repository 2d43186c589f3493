"""Engines for both dialects, with the settings each needs to keep a 202's promise."""

import asyncio
import shutil
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import event, exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from opencomms.store import sqlite_file
from opencomms.store.direct import DirectReader, PostgresReader, SqliteReader
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
    # Constant-SQL reads straight to the driver (store/direct.py); None for :memory:.
    direct: DirectReader | None = field(default=None, repr=False)
    # SQLite files: WAL checkpoints off the commit path, from the first write on.
    _checkpointer: sqlite_file.Checkpointer | None = field(default=None, repr=False)

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
        self._start_checkpoints()
        async with self._write_turn, self.engine.begin() as conn:
            yield conn
        self._committed()

    def _start_checkpoints(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.start()

    def _committed(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.kick()

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
        self._start_checkpoints()
        try:
            return await self._group.run(job)
        finally:
            self._committed()

    @property
    def can_group(self) -> bool:
        return self._group is not None

    async def dispose(self) -> None:
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)
        if self._group is not None:
            await self._group.aclose()
        if self.direct is not None:
            await self.direct.aclose()
        await self.engine.dispose()


def open_database(url: str, *, pool_size: int | None = None) -> Database:
    """An engine for the URL. PostgreSQL's pool holds `pool_size` (20) connections and never
    more: past it requests queue for a connection instead of opening (and closing) a session
    each, and nothing pings a connection before use (a round trip per request); a
    connection an error breaks is dropped from the pool when it fails."""
    full_url = normalize_url(url)
    dialect = make_url(full_url).get_backend_name()
    # hide_parameters: a database error must never carry phone numbers, texts or secrets
    # into a log line ("[parameters: ...]").
    if dialect == "sqlite":
        # Each aiosqlite connection is a thread; one process rarely reads with more at once.
        engine = create_async_engine(
            full_url, pool_size=pool_size or 10, max_overflow=0, hide_parameters=True
        )
        _configure_sqlite(engine)
        turn = asyncio.Lock()
        path = make_url(full_url).database
        on_disk = bool(path and path != ":memory:")
        if not (path and on_disk):
            return Database(engine=engine, dialect=dialect, _write_turn=turn)
        return Database(
            engine=engine,
            dialect=dialect,
            _write_turn=turn,
            _group=GroupCommitter(Path(path), turn),
            direct=SqliteReader(Path(path)),
            _checkpointer=sqlite_file.Checkpointer(Path(path)),
        )
    engine = create_async_engine(
        full_url, pool_size=pool_size or 20, max_overflow=0, hide_parameters=True
    )
    dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    return Database(engine=engine, dialect=dialect, direct=PostgresReader(dsn))


# SQLite errors after which a connection must not go back to the pool: one opened while the
# file was read-only stays read-only for good, and one that hit a full disk or an I/O error
# may hold a broken journal. Treated as disconnects, they are closed and re-made.
_SQLITE_BROKEN = ("readonly", "read-only", "disk is full", "disk i/o error", "unable to open")

# What a database that cannot be reached, or refuses writes, raises: a 503, not a 500.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    exc.OperationalError,  # SQLite read-only, full, locked; PostgreSQL gone
    exc.InterfaceError,
    exc.DisconnectionError,
    exc.TimeoutError,  # no pooled connection came free in time
    OSError,  # refused or reset connections; TimeoutError is one too
)


@cache
def _postgresql_unavailable() -> tuple[type[BaseException], ...]:
    """asyncpg's errors of the same kinds. Imported here, on the first error looked at, rather
    than at start: a server on SQLite never loads asyncpg (some 5 MB)."""
    import asyncpg

    return (
        asyncpg.PostgresConnectionError,
        asyncpg.InterfaceError,
        asyncpg.exceptions.OperatorInterventionError,  # shutting down, starting up
        asyncpg.exceptions.InsufficientResourcesError,  # disk full, out of memory
        asyncpg.exceptions.ReadOnlySQLTransactionError,  # a replica, or read-only mode
    )


def _unavailable_kinds() -> tuple[type[BaseException], ...]:
    return UNAVAILABLE + _postgresql_unavailable() if "asyncpg" in sys.modules else UNAVAILABLE


def is_unavailable(error: BaseException) -> bool:
    """True if `error` (or the driver error it wraps) says the database is down,
    unreachable, read-only or full: a condition to wait out, not a bug."""
    seen: BaseException | None = error
    kinds = _unavailable_kinds()
    for _ in range(4):  # SQLAlchemy's wrapper, the adapter's, the driver's
        if seen is None:
            return False
        if isinstance(seen, kinds):
            return True
        if isinstance(seen, exc.DBAPIError) and seen.connection_invalidated:
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


async def write_refusal(db: Database) -> str | None:
    """Why the database would refuse a write now, or None when it takes writes: one of
    "unreachable", "read-only", "disk full", "no resources" (/readyz words them)."""
    if db.is_sqlite:
        return await _sqlite_refusal(db)
    return await _postgresql_refusal(db)


async def _sqlite_refusal(db: Database) -> str | None:
    """BEGIN IMMEDIATE takes the write lock (refused on a read-only file) and is rolled
    back; a full disk only shows at commit, so the free space beside the file is checked."""
    try:
        async with db.engine.connect() as conn, conn.begin() as transaction:
            await conn.execute(text("UPDATE accounts SET sid = sid WHERE 1 = 0"))
            await transaction.rollback()
    except Exception as error:
        return "read-only" if _says_read_only(error) else "unreachable"
    folder = _sqlite_folder(db)
    if folder is not None and shutil.disk_usage(folder).free < MIN_FREE_BYTES:
        return "disk full"
    return None


# A committed write that must allocate disk space: TRUNCATE gives the table a new, empty
# file and the INSERT extends it, which a full disk refuses (53100). Updating a row in
# place would not notice: the new version fits the page the old one is in. A read-only
# server (a standby) or session refuses the TRUNCATE (25006).
_PG_PROBE = (
    "SET LOCAL lock_timeout = '2s'",  # two probes at once: the second waits, briefly
    "TRUNCATE readiness_probe",
    "INSERT INTO readiness_probe (id, checked_at) VALUES (1, 0)",
)


async def _postgresql_refusal(db: Database) -> str | None:
    try:
        async with db.engine.connect() as conn:
            try:
                async with conn.begin():
                    for statement in _PG_PROBE:
                        await conn.exec_driver_sql(statement)
            except Exception as error:
                refusal = _pg_refusal_of(error)
                if refusal == "read-only" and not conn.invalidated:
                    # A session made read-only stays so: let the pool open a new one.
                    await conn.invalidate()
                return refusal
    except Exception as error:  # no connection at all
        return _pg_refusal_of(error)
    return None


def _pg_refusal_of(error: BaseException) -> str:
    state = sqlstate(error)
    if state is None or state.startswith(("08", "57P")):  # no connection, shutting down
        return "unreachable"
    if state == "25006":  # read_only_sql_transaction
        return "read-only"
    if state == "53100":  # disk_full
        return "disk full"
    return "no resources"  # 53xxx, and any other refusal of the write


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a PostgreSQL error, through SQLAlchemy's and the adapter's wrappers."""
    seen: BaseException | None = error
    for _ in range(4):
        if seen is None:
            return None
        state = getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None)
        if isinstance(state, str):
            return state
        seen = getattr(seen, "orig", None) or seen.__cause__
    return None


MIN_FREE_BYTES = 16 * 1024 * 1024  # below this, a 10,000-recipient accept may not fit


def _says_read_only(error: BaseException) -> bool:
    text_ = str(getattr(error, "orig", error)).lower()
    return "read-only" in text_ or "readonly" in text_


def _sqlite_folder(db: Database) -> Path | None:
    if not db.is_sqlite:
        return None
    path = sqlite_path(db.engine.url.render_as_string(hide_password=False))
    return path.parent if path is not None else None


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins (see on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for setting in sqlite_file.SETTINGS:
            cursor.execute(setting)
        cursor.close()

    @event.listens_for(engine.sync_engine, "handle_error")
    def on_error(context: Any) -> None:
        message = str(context.original_exception).lower()
        if any(sign in message for sign in _SQLITE_BROKEN):
            context.is_disconnect = True
            # Only this connection: the others may be fine (read-only is per connection).
            context.invalidate_pool_on_disconnect = False

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock first, so two writers never deadlock on an upgrade.
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
