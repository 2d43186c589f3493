"""WAL checkpoints run on their own thread after writes, not inside the commit that crosses
SQLite's default 1,000-page line; the thread stops with the database."""

import asyncio
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from opencomms.store import migrate
from opencomms.store.db import open_database
from opencomms.store.sqlite_file import COMMIT_CHECKPOINT_PAGES, PAGE_SIZE


def checkpointer_threads() -> int:
    return sum(t.name == "sqlite-checkpoint" for t in threading.enumerate())


def log_state(path: Path) -> tuple[int, int]:
    """(pages in the log, pages of it already in the database file)."""
    conn = sqlite3.connect(path)
    try:
        _busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return frames, copied
    finally:
        conn.close()


async def test_a_large_commit_is_checkpointed_by_the_thread(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    before = checkpointer_threads()
    db = open_database(f"sqlite:///{path}")
    await migrate.upgrade(db)

    def job(conn: sqlite3.Connection) -> int:
        # Some 1,500 pages: past the default line, far below the commit's own.
        conn.execute("CREATE TABLE IF NOT EXISTS filler (x BLOB)")
        size = PAGE_SIZE - 512  # one row a page
        conn.executemany(f"INSERT INTO filler VALUES (randomblob({size}))", [()] * 1500)
        setting = conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        return int(setting)

    try:
        assert await db.grouped(job) == COMMIT_CHECKPOINT_PAGES
        assert db._checkpointer is not None
        for _ in range(100):  # bounded: 10 s
            if db._checkpointer.checkpoints:
                break
            await asyncio.sleep(0.1)
        assert db._checkpointer.checkpoints >= 1
        frames, copied = log_state(path)
        assert frames == copied and frames > 1000
        assert checkpointer_threads() == before + 1
    finally:
        await db.dispose()
    assert checkpointer_threads() == before


async def test_reads_alone_start_no_thread(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'r.db'}")
    before = checkpointer_threads()
    try:
        async with db.read() as conn:
            await conn.exec_driver_sql("SELECT 1")
        assert checkpointer_threads() == before
    finally:
        await db.dispose()


async def test_a_new_file_has_large_pages_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    made = sqlite3.connect(old)
    made.execute("CREATE TABLE t (x)")  # made with the default page size
    made.close()
    for path, size in ((tmp_path / "new.db", PAGE_SIZE), (old, 4096)):
        db = open_database(f"sqlite:///{path}")
        try:
            await migrate.upgrade(db)
        finally:
            await db.dispose()
        check = sqlite3.connect(path)
        assert check.execute("PRAGMA page_size").fetchone()[0] == size
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        check.close()


def test_a_sqlite_server_does_not_load_the_postgresql_driver(tmp_path: Path) -> None:
    """asyncpg (some 5 MB) is PostgreSQL's alone: a process on SQLite that starts, migrates,
    serves an error and classifies it never imports it."""
    script = f"""
import asyncio, sys
from sqlalchemy import exc
from opencomms.api.app import create_app
from opencomms.config import Settings
from opencomms.store import migrate
from opencomms.store.db import is_unavailable, open_database

async def main():
    db = open_database("sqlite:///{tmp_path / "p.db"}")
    await migrate.upgrade(db)
    create_app(db, Settings(secret_key="k"))
    assert is_unavailable(exc.OperationalError("x", {{}}, OSError()))
    await db.dispose()
    assert "asyncpg" not in sys.modules, "asyncpg was imported"

asyncio.run(main())
"""
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
