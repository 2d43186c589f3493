"""A worker whose database goes away mid-batch, through a real TCP proxy in front of
PostgreSQL: what it claimed goes back to the queue once the database answers again, and the
results of hand-offs already made are written, not lost to a lapsing lease. And a batch may
name more operations than the plan cache holds."""

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select, text, update

from opencomms.channels import (
    Handoff,
    InboundSink,
    OutboundMessage,
    Receipt,
    ReceiptSink,
    SandboxChannel,
    SendResult,
)
from opencomms.clock import now_ms
from opencomms.dispatch import Dispatcher, WorkerConfig, run_worker
from opencomms.store.db import Database, is_unavailable, open_database
from opencomms.store.queue import Claim
from opencomms.store.tables import attempts, messages
from tests.dispatch.helpers import (
    FakeClock,
    body,
    dispatcher,
    dispatcher_on,
    drain,
    eventually,
    send,
)
from tests.hardening.proxy import TcpProxy


@pytest.fixture
def proxy() -> AsyncIterator[TcpProxy]:
    with TcpProxy("127.0.0.1", 5432) as running:
        yield running


@pytest.fixture
async def through_proxy(queue_pg_url: str, proxy: TcpProxy) -> AsyncIterator[Database]:
    """The test's PostgreSQL database, reached through the proxy: cut it to lose it."""
    parts = urlsplit(queue_pg_url)
    url = parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl()
    database = open_database(url)
    yield database
    await database.dispose()


async def rows(db: Database) -> list[dict[str, object]]:
    async with db.read() as conn:
        query = select(messages).order_by(messages.c.position)
        return [dict(r._mapping) for r in await conn.execute(query)]


async def attempt_count(db: Database) -> int:
    async with db.read() as conn:
        return len((await conn.execute(select(attempts.c.id))).all())


async def run_until_answered(worker: Dispatcher, tries: int = 20) -> int:
    """run_once until the database answers (the pool's dead connections fail first)."""
    for _ in range(tries):
        try:
            return await worker.run_once()
        except Exception as error:
            assert is_unavailable(error), error
            await asyncio.sleep(0.05)
    raise AssertionError("the database never answered again")


async def test_a_batch_of_more_operations_than_the_plan_cache_holds(db: Database) -> None:
    """A thousand one-recipient sends claimed at once: every plan stays at hand."""
    clock = FakeClock()
    for index in range(300):
        await send(db, body(f"+1415555{index:04d}"), now=clock.now)
    sandbox = SandboxChannel(clock=clock)
    async with dispatcher(db, clock, sandbox=sandbox) as worker:
        assert await worker.run_once() == 300
    assert {r["status"] for r in await rows(db)} == {"DELIVERED"}
    assert len(sandbox.inbox.deliveries) == 300


async def test_claims_held_when_the_database_goes_are_given_back(
    pg_db: Database, through_proxy: Database, proxy: TcpProxy
) -> None:
    clock = FakeClock()  # stands still: no lease ever lapses in this test
    for index in range(5):
        await send(pg_db, body(f"+1415555{index:04d}"), now=clock.now)
    sandbox = SandboxChannel(clock=clock)
    async with dispatcher(through_proxy, clock, sandbox=sandbox) as worker:
        claim = worker.claim

        async def claim_then_cut() -> list[Claim]:
            batch = await claim()
            proxy.cut()
            return batch

        worker.claim = claim_then_cut  # type: ignore[method-assign]
        with pytest.raises(Exception) as raised:
            await worker.run_once()
        assert is_unavailable(raised.value)
        assert not sandbox.inbox.deliveries
        worker.claim = claim  # type: ignore[method-assign]
        proxy.restore()
        # Given back, they are due at once, though their lease has not lapsed.
        assert await run_until_answered(worker) == 5
    found = await rows(pg_db)
    assert {r["status"] for r in found} == {"DELIVERED"}
    # Not taken for poison suspects, and one attempt each.
    assert {(r["stalled_claims"], r["attempt_count"]) for r in found} == {(0, 1)}
    assert len(sandbox.inbox.deliveries) == 5


async def test_a_start_whose_answer_was_lost_is_unstarted(
    pg_db: Database, through_proxy: Database, proxy: TcpProxy
) -> None:
    """The start transaction commits (attempt rows in flight), then the database goes away
    before the worker hears of it: no hand-off happened, so the attempts are taken back."""
    clock = FakeClock()
    for index in range(5):
        await send(pg_db, body(f"+1415555{index:04d}"), now=clock.now)
    sandbox = SandboxChannel(clock=clock)
    async with dispatcher(through_proxy, clock, sandbox=sandbox) as worker:
        start = worker._start

        async def start_then_lose(*args: Any) -> Any:
            await start(*args)
            proxy.cut()
            async with through_proxy.write() as conn:  # the pool's connections are gone
                await conn.execute(text("SELECT 1"))
            raise AssertionError("the database was still there")

        worker._start = start_then_lose  # type: ignore[method-assign]
        with pytest.raises(Exception) as raised:
            await worker.run_once()
        assert is_unavailable(raised.value), raised.value
        assert await attempt_count(pg_db) == 5  # in flight
        worker._start = start  # type: ignore[method-assign]
        proxy.restore()
        assert await run_until_answered(worker) == 5
    found = await rows(pg_db)
    assert {r["status"] for r in found} == {"DELIVERED"}
    assert {(r["stalled_claims"], r["attempt_count"]) for r in found} == {(0, 1)}
    assert await attempt_count(pg_db) == 5
    assert len(sandbox.inbox.deliveries) == 5


class CuttingChannel:
    """A sandbox that cuts the database away as it hands off, and gives it back a moment
    later: the results exist only in the worker meanwhile."""

    name = "cutting"

    def __init__(self, inner: SandboxChannel, proxy: TcpProxy) -> None:
        self.inner = inner
        self.proxy = proxy
        self.cuts = 0

    async def open(self, receipts: ReceiptSink, inbound: InboundSink | None = None) -> None:
        await self.inner.open(receipts, inbound)

    async def send(self, message: OutboundMessage) -> SendResult:
        result = await self.inner.send(message)
        if not self.cuts:
            self.cuts += 1
            self.proxy.cut()
            threading.Timer(0.5, self.proxy.restore).start()
        return result

    async def query(self, handoffs: Sequence[Handoff]) -> list[Receipt]:
        return await self.inner.query(handoffs)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_results_of_hand_offs_made_are_written_once_the_database_is_back(
    pg_db: Database, through_proxy: Database, proxy: TcpProxy
) -> None:
    clock = FakeClock()
    for index in range(5):
        await send(pg_db, body(f"+1415555{index:04d}"), now=clock.now)
    sandbox = SandboxChannel(clock=clock)
    channel = CuttingChannel(sandbox, proxy)
    async with dispatcher_on(through_proxy, clock, channel) as worker:
        # The batch's results are written, after the cut, by the same run.
        assert await worker.run_once() == 5
        assert channel.cuts == 1
        assert await drain(worker) == 0
    found = await rows(pg_db)
    assert {r["status"] for r in found} == {"DELIVERED"}
    assert len(sandbox.inbox.deliveries) == 5  # each handed off once
    assert await attempt_count(pg_db) == 5


async def test_many_suspects_after_a_lost_worker_drain_with_every_lane(db: Database) -> None:
    """Claims a dead worker left leased are suspects, each tried alone; two lanes
    must never each hold one (each would wait half a lease for the other to go idle)."""
    op = await send(db, body(*[f"+1415555{i:04d}" for i in range(24)]))
    async with db.write() as conn:
        past = now_ms() - 1
        await conn.execute(
            update(messages)
            .where(messages.c.operation_id == op)
            .values(lease_owner="dead", lease_expires_at=past, next_attempt_at=past)
        )
    stop = asyncio.Event()
    config = WorkerConfig(worker_id="alive", poll_interval=0.05, lanes=2, lease_seconds=30)
    worker = asyncio.create_task(run_worker(db, config, stop))

    async def all_delivered() -> bool:
        return {r["status"] for r in await rows(db)} == {"DELIVERED"}

    try:
        await eventually(all_delivered, seconds=20)
    finally:
        stop.set()
        await asyncio.wait_for(worker, 10)
    assert {(r["stalled_claims"], r["attempt_count"]) for r in await rows(db)} == {(0, 1)}
