"""LISTEN/NOTIFY wakes idle workers, and the listener comes back after losing its connection."""

import asyncio

import asyncpg

from opencomms.dispatch.wakeup import PgListener, first_of, listen_dsn
from opencomms.store import queue
from opencomms.store.db import Database


async def notify(db: Database) -> None:
    async with db.write() as conn:
        await queue.notify(conn)


async def woken(listener: PgListener) -> None:
    await asyncio.wait_for(listener.event.wait(), 10)
    listener.event.clear()


async def test_notify_wakes_the_listener(pg_db: Database) -> None:
    async with PgListener(listen_dsn(pg_db)) as listener:
        await asyncio.wait_for(listener.connected.wait(), 10)
        listener.event.clear()
        await notify(pg_db)
        await woken(listener)


async def test_listener_reconnects_after_losing_its_connection(pg_db: Database) -> None:
    async with PgListener(listen_dsn(pg_db), ping_seconds=0.5) as listener:
        await asyncio.wait_for(listener.connected.wait(), 10)
        listener.event.clear()
        # What a server restart does to every client connection.
        admin = await asyncpg.connect(listen_dsn(pg_db))
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", listener.backend_pid)
        finally:
            await admin.close()
        await woken(listener)  # a reconnect wakes the worker: notifications may have been missed
        assert listener.connections == 2
        await notify(pg_db)
        await woken(listener)


async def test_first_of_returns_on_an_event_or_the_timeout() -> None:
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await first_of([event], 0.05)
    assert loop.time() - started >= 0.04
    event.set()
    await asyncio.wait_for(first_of([event], 60), 1)
