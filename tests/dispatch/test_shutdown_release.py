"""SIGTERM and SIGINT stop a worker at once: the hand-offs with the channel finish, the
leases of everything else in hand are given back at once, so a second worker takes them
right away (not after the lease timeout), and the process exits 0. PostgreSQL, two real
worker processes."""

import asyncio
import signal
import time

import pytest
from sqlalchemy import func, select

from opencomms.dispatch.outcomes import OUTCOME_UNKNOWN
from opencomms.store.db import Database
from opencomms.store.tables import attempts, messages
from tests.dispatch.helpers import body, eventually, message_rows, send
from tests.dispatch.test_crash import start_worker

pytestmark = pytest.mark.slow

SLOW = {
    "sandbox_latency": "0.2",  # each hand-off takes a slow network round trip
    "send_concurrency": "4",
    "batch_size": "300",  # both lanes of the first worker claim everything at once
    "lease_seconds": "300",  # far past the test: only a release lets another worker in
    "poll_interval": "0.1",
}


async def attempt_count(db: Database, **where: object) -> int:
    query = select(func.count()).select_from(attempts)
    for column, value in where.items():
        query = query.where(attempts.c[column] == value)
    async with db.read() as conn:
        return int((await conn.execute(query)).scalar_one())


async def last_attempt_id(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.max(attempts.c.id)))).scalar_one())


async def statuses_up_to(db: Database, last_id: int) -> dict[str, int]:
    """How many attempt rows up to `last_id` are in each status."""
    query = (
        select(attempts.c.status, func.count())
        .where(attempts.c.id <= last_id)
        .group_by(attempts.c.status)
    )
    async with db.read() as conn:
        return {str(status): int(n) for status, n in (await conn.execute(query)).all()}


async def leased(db: Database) -> int:
    query = select(func.count()).where(messages.c.lease_owner.is_not(None))
    async with db.read() as conn:
        return int((await conn.execute(query)).scalar_one())


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_stopping_worker_hands_its_leases_to_another_at_once(
    pg_db: Database, queue_pg_url: str, sig: signal.Signals
) -> None:
    db = pg_db
    op = await send(db, body(*[f"+1415555{i:04d}" for i in range(600)]))
    first = start_worker(queue_pg_url, worker_id="first", **SLOW)
    second = None
    try:

        async def started() -> bool:
            return await attempt_count(db) == 600

        # Both lanes have claimed and started their batch: an attempt row in flight each.
        await eventually(started, 30)
        assert await leased(db) == 600  # the first worker holds everything
        # Row ids only grow: the rows the second worker inserts for what it takes over come
        # after these, so they can be told apart from the first worker's own.
        first_last = await last_attempt_id(db)
        second = start_worker(queue_pg_url, worker_id="second", **SLOW)
        await asyncio.sleep(1.0)  # started, finding nothing it may claim
        first.send_signal(sig)
        stopped_at = time.monotonic()
        assert await asyncio.to_thread(first.wait, 20) == 0
        # Only what was with the sandbox finished: four hand-offs per lane, 200 ms each.
        assert time.monotonic() - stopped_at < 10
        # The first worker's rows left: only the hand-offs it made, recorded. Counting every
        # row instead would count the second worker's too: woken by the release, it may
        # have started what it took over before the first process was gone.
        by_first = await statuses_up_to(db, first_last)
        assert "QUEUED" not in by_first, f"attempts left in flight, not given back: {by_first}"
        kept = sum(by_first.values())
        assert kept < 600, "the signal came after the first worker had sent everything"
        await eventually(lambda: _all_delivered(db, op), 120)
        assert time.monotonic() - stopped_at < 120  # well before the 300 s lease ran out
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                await asyncio.to_thread(process.wait, 20)
    rows = await message_rows(db, op)
    assert [r["attempt_count"] for r in rows] == [1] * 600  # none sent twice, none used up
    assert await attempt_count(db) == 600
    assert await attempt_count(db, error_code=OUTCOME_UNKNOWN) == 0
    assert await attempt_count(db, status="QUEUED") == 0


async def _all_delivered(db: Database, op: str) -> bool:
    return all(r["status"] == "DELIVERED" for r in await message_rows(db, op))
