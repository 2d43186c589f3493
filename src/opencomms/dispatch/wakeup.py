"""Waking idle workers: LISTEN/NOTIFY on PostgreSQL, with a short poll as the safety net.

After a PostgreSQL restart a LISTEN connection is silently gone and workers would fall back
to polling for good (a known failure of other Postgres queues). The listener notices (the
driver's termination callback, and a periodic ping for sockets that die without closing),
reconnects with backoff, and wakes the worker once on every reconnect, since notifications
sent while it was away are lost.
"""

import asyncio
import contextlib
import logging
from types import TracebackType

from opencomms.store.db import Database
from opencomms.store.queue import NOTIFY_CHANNEL

log = logging.getLogger("opencomms.dispatch.wakeup")


def listen_dsn(db: Database) -> str:
    """The asyncpg DSN of the database's own URL (the listener needs a raw connection)."""
    url = db.engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class PgListener:
    """Sets `event` on every NOTIFY of the queue channel; keeps its connection alive."""

    def __init__(self, dsn: str, *, ping_seconds: float = 5.0, max_backoff: float = 5.0) -> None:
        self.event = asyncio.Event()
        self.connected = asyncio.Event()
        self.connections = 0  # how many times it connected: 1 + reconnects
        self._dsn = dsn
        self._ping = ping_seconds
        self._max_backoff = max_backoff
        self._task: asyncio.Task[None] | None = None
        self.backend_pid: int | None = None

    async def __aenter__(self) -> "PgListener":
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            try:
                await self._listen_until_lost()
                backoff = 0.1
            except Exception as error:
                log.warning("LISTEN connection failed (%s); retrying in %.1fs", error, backoff)
            self.connected.clear()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)

    async def _listen_until_lost(self) -> None:
        import asyncpg  # PostgreSQL's alone: not loaded on SQLite

        conn = await asyncpg.connect(self._dsn)
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(NOTIFY_CHANNEL, lambda *_args: self.event.set())
            self.connections += 1
            self.backend_pid = conn.get_server_pid()
            self.connected.set()
            self.event.set()  # anything notified while we were away was missed
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self._ping)
                if not lost.is_set():
                    await asyncio.wait_for(conn.fetchval("SELECT 1"), self._ping)
            log.warning("LISTEN connection lost; reconnecting")
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 1.0)


async def first_of(events: list[asyncio.Event], seconds: float) -> None:
    """Returns when any event is set or after `seconds`."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
