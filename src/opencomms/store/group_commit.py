"""Group commit for SQLite: sends waiting to be written share one transaction and one fsync.

With `synchronous=FULL` every commit waits for the disk (about 1.5 ms here), and SQLite has
one writer, so committing each 1-recipient send on its own caps a server near 700 sends/s
whatever the CPU does. Here the sends that arrive while a group is being written wait
together and go in the next group: one `BEGIN IMMEDIATE`, each send inside its own SAVEPOINT
(so one failing send rolls back alone), one `COMMIT`. No caller hears back before the commit
that holds its rows has returned, so a 202 still means on disk.

The group runs on one dedicated thread with its own `sqlite3` connection: one thread hop per
group instead of one per statement, and no SQL compilation. It takes the database's
in-process write turn, so it alternates with the worker's transactions instead of colliding
with them on the file lock.
"""

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from opencomms.store import sqlite_file

Job = Callable[[sqlite3.Connection], Any]

MAX_GROUP = 256  # sends per transaction: past this, a group's latency outweighs the fsync saved


class GroupCommitter:
    def __init__(self, path: Path, write_turn: asyncio.Lock) -> None:
        self.path = path
        self._write_turn = write_turn
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._waiting: list[tuple[Job, asyncio.Future[Any]]] = []
        self._draining: asyncio.Task[None] | None = None
        self.commits = 0  # transactions committed, for tests and metrics

    async def run(self, job: Job) -> Any:
        """Runs `job` in a transaction shared with other waiting jobs; returns its result
        once that transaction has committed (or raises what the job or the commit raised)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((job, future))
        if self._draining is None or self._draining.done():
            self._draining = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-group")
        while self._waiting:
            group, self._waiting = self._waiting[:MAX_GROUP], self._waiting[MAX_GROUP:]
            try:
                async with self._write_turn:
                    outcomes = await loop.run_in_executor(self._executor, self._write, group)
            except BaseException as error:  # the commit itself failed: nothing of it is on disk
                outcomes = [error] * len(group)
            for (_, future), outcome in zip(group, outcomes, strict=True):
                if future.done():
                    continue  # the caller gave up waiting; its rows may still have committed
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        for setting in sqlite_file.SETTINGS:  # synchronous=FULL: the 202's promise
            conn.execute(setting)
        return conn

    def _write(self, group: list[tuple[Job, asyncio.Future[Any]]]) -> list[Any]:
        """On the group thread: every job in its own savepoint, then one commit."""
        if self._conn is None:
            self._conn = self._connect()
        conn = self._conn
        outcomes: list[Any] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for job, _ in group:
                conn.execute("SAVEPOINT send")
                try:
                    outcomes.append(job(conn))
                except Exception as error:
                    conn.execute("ROLLBACK TO send")
                    outcomes.append(error)
                conn.execute("RELEASE send")
            conn.execute("COMMIT")
            self.commits += 1
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return outcomes

    async def aclose(self) -> None:
        """Closes the connection and its thread; a later `run` opens them again, as an
        SQLAlchemy engine reopens its pool after `dispose()`."""
        if self._draining is not None:
            await asyncio.gather(self._draining, return_exceptions=True)
        executor, self._executor = self._executor, None
        if executor is None:
            return

        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(executor, close)
        executor.shutdown(wait=True)
