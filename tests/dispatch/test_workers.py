"""Several workers on one database, and the worker loop as the CLI runs it."""

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from opencomms.channels import SandboxChannel
from opencomms.clock import now_ms
from opencomms.dispatch import WorkerConfig, run_worker
from opencomms.dispatch.worker import serve
from opencomms.store import queue
from opencomms.store.db import Database, open_database
from opencomms.store.tables import attempts, messages
from tests.dispatch.helpers import (
    FakeClock,
    assert_operation_consistent,
    body,
    dispatcher,
    drain,
    eventually,
    message_rows,
    send,
)


async def test_two_workers_never_deliver_a_message_twice(db: Database, db_url: str) -> None:
    clock = FakeClock()
    addresses = [f"+1415555{i:04d}" for i in range(600)]
    ops = [await send(db, body(*addresses[i::3]), now=clock.now) for i in range(3)]
    other_db = open_database(db_url)  # a second process would have its own engine
    inboxes = [SandboxChannel(clock=clock), SandboxChannel(clock=clock)]
    try:
        async with (
            dispatcher(db, clock, sandbox=inboxes[0], worker_id="a", batch_size=40) as a,
            dispatcher(other_db, clock, sandbox=inboxes[1], worker_id="b", batch_size=40) as b,
        ):
            done = await asyncio.gather(drain(a), drain(b))
    finally:
        await other_db.dispose()
    assert all(done)  # both took part
    delivered = [d.message_id for inbox in inboxes for d in inbox.inbox.deliveries]
    assert len(delivered) == len(set(delivered)) == 600
    for op in ops:
        rows = await message_rows(db, op)
        assert {r["status"] for r in rows} == {"DELIVERED"}
        assert {r["attempt_count"] for r in rows} == {1}
        assert await assert_operation_consistent(db, op) == "COMPLETED"


async def count_delivered(db: Database) -> int:
    async with db.read() as conn:
        query = select(func.count()).where(messages.c.status == "DELIVERED")
        return int((await conn.execute(query)).scalar_one())


async def test_run_worker_delivers_and_stops_when_asked(db: Database) -> None:
    stop = asyncio.Event()
    config = WorkerConfig(worker_id="loop", poll_interval=0.1, batch_size=50)
    worker = asyncio.create_task(run_worker(db, config, stop))
    op = await send(db, body(*[f"+1415555{i:04d}" for i in range(120)]))
    async with db.write() as conn:
        await queue.notify(conn)

    async def all_delivered() -> bool:
        return await count_delivered(db) == 120

    await eventually(all_delivered)
    stop.set()
    await asyncio.wait_for(worker, 10)
    assert await assert_operation_consistent(db, op) == "COMPLETED"


async def test_scheduled_messages_leave_within_a_second_of_send_at(db: Database) -> None:
    stop = asyncio.Event()
    config = WorkerConfig(worker_id="loop", batch_size=100)  # default poll interval
    worker = asyncio.create_task(run_worker(db, config, stop))
    send_at = (now_ms() // 1000 + 2) * 1000
    moment = datetime.fromtimestamp(send_at / 1000, UTC).isoformat().replace("+00:00", "Z")
    addresses = [f"+1415555{i:04d}" for i in range(50)]
    op = await send(db, body(*addresses, schedule={"sendAt": [moment]}))

    async def all_delivered() -> bool:
        return await count_delivered(db) == 50

    await eventually(all_delivered)
    stop.set()
    await asyncio.wait_for(worker, 10)
    async with db.read() as conn:
        query = select(attempts.c.attempted_at).where(attempts.c.operation_id == op)
        lateness = sorted(at - send_at for (at,) in await conn.execute(query))
    assert lateness[0] >= 0
    assert lateness[-1] < 1000  # every one, so the p99 too
    assert await assert_operation_consistent(db, op) == "COMPLETED"


async def test_database_failures_back_off_and_log_once(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """While the database is away, lanes wait longer and longer and say so once, even with
    receipts waking them; when it answers again that is said once too."""
    worker = dispatcher(db, FakeClock(), poll_interval=0.05)
    tries = 0

    async def failing() -> int:
        nonlocal tries
        tries += 1
        worker.receipts.arrived.set()  # what receipts put back after a failed write do
        if tries <= 6:
            raise ConnectionRefusedError("database restarting")
        return 0

    worker.run_once = failing  # type: ignore[method-assign]
    stop = asyncio.Event()
    with caplog.at_level(logging.DEBUG, logger="opencomms.dispatch"):
        task = asyncio.create_task(serve(worker, [], stop))
        await eventually(lambda: _reached(lambda: tries > 6), 20)
        stop.set()
        await task
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "retrying with backoff" in errors[0].getMessage()
    recovered = [r for r in caplog.records if "recovered" in r.getMessage()]
    assert len(recovered) == 1
    # Two lanes, waits doubling from 0.05 s: six failures take over half a second, where
    # retrying on every wake-up would have spun through them at once.
    failed = [r.created for r in caplog.records if r.getMessage().startswith("dispatch failed")]
    assert len(failed) == 6
    assert failed[-1] - failed[0] >= 0.2


async def _reached(check: Callable[[], bool]) -> bool:
    return check()
