"""Leases and fencing tokens: a worker that lost its lease cannot write anything."""

import asyncio

from sqlalchemy import select

from opencomms.channels import SandboxChannel
from opencomms.store.db import Database
from opencomms.store.tables import messages
from tests.dispatch.helpers import (
    FakeClock,
    GatedChannel,
    assert_operation_consistent,
    attempt_rows,
    body,
    dispatcher,
    dispatcher_on,
    drain,
    eventually,
    message_rows,
    send,
)


async def test_a_stale_claim_sends_nothing(db: Database) -> None:
    clock = FakeClock()
    op = await send(db, body("+14155550100", "+14155550101"), now=clock.now)
    slow_inbox, fast_inbox = SandboxChannel(clock=clock), SandboxChannel(clock=clock)
    async with (
        dispatcher(db, clock, sandbox=slow_inbox, worker_id="slow", lease_seconds=30) as slow,
        dispatcher(db, clock, sandbox=fast_inbox, worker_id="fast", lease_seconds=30) as fast,
    ):
        stale_batch = await slow.claim()
        assert len(stale_batch) == 2
        assert await fast.claim() == []  # leased
        clock.advance(31)  # the slow worker pauses past its lease
        await drain(fast)
        await slow.process(stale_batch)
    assert slow_inbox.inbox.deliveries == []
    assert len(fast_inbox.inbox.deliveries) == 2
    for row in await message_rows(db, op):
        assert (row["status"], row["attempt_count"]) == ("DELIVERED", 1)
        assert len(await attempt_rows(db, row["id"])) == 1
    assert await assert_operation_consistent(db, op) == "COMPLETED"


async def test_a_worker_that_lost_its_lease_mid_send_cannot_record(db: Database) -> None:
    clock = FakeClock()
    op = await send(db, body("+14155550100"), now=clock.now)
    gated = GatedChannel(SandboxChannel(clock=clock))
    rescuer_inbox = SandboxChannel(clock=clock)
    async with (
        dispatcher_on(db, clock, gated, worker_id="stalled", lease_seconds=30) as stalled,
        dispatcher(db, clock, sandbox=rescuer_inbox, worker_id="rescuer") as rescuer,
    ):
        stuck = asyncio.create_task(stalled.run_once())
        await asyncio.wait_for(gated.waiting.wait(), 10)
        [row] = await message_rows(db, op)
        [in_flight] = await attempt_rows(db, row["id"])
        assert in_flight["status"] == "QUEUED"  # written before the channel was called
        clock.advance(31)
        await drain(rescuer)
        gated.gate.set()
        await asyncio.wait_for(stuck, 10)  # its late result is fenced off
    [row] = await message_rows(db, op)
    first, second = await attempt_rows(db, row["id"])
    assert (first["status"], first["error_code"], first["external_id"]) == ("FAILED", 30008, None)
    assert "Outcome unknown" in first["error_message"]
    assert (second["status"], row["status"], row["attempt_count"]) == ("DELIVERED",) * 2 + (2,)
    assert second["external_id"] == rescuer_inbox.inbox.deliveries[0].external_id
    assert await assert_operation_consistent(db, op) == "COMPLETED"


async def test_heartbeats_keep_a_slow_batch_leased(db: Database) -> None:
    clock = FakeClock()
    op = await send(db, body("+14155550100"), now=clock.now)
    gated = GatedChannel(SandboxChannel(clock=clock))
    async with (
        dispatcher_on(db, clock, gated, worker_id="slow", lease_seconds=0.3) as slow,
        dispatcher(db, clock, worker_id="other") as other,
    ):
        running = asyncio.create_task(slow.run_once())
        await asyncio.wait_for(gated.waiting.wait(), 10)
        [row] = await message_rows(db, op)
        first_expiry = row["lease_expires_at"]
        clock.advance(0.2)

        async def extended() -> bool:
            async with db.read() as conn:
                query = select(messages.c.lease_expires_at).where(messages.c.operation_id == op)
                return (await conn.execute(query)).scalar_one() > first_expiry

        await eventually(extended)
        clock.advance(0.2)  # past the first expiry, within the extended one
        assert await other.run_once() == 0
        gated.gate.set()
        await asyncio.wait_for(running, 10)
    [row] = await message_rows(db, op)
    assert (row["status"], row["attempt_count"]) == ("DELIVERED", 1)
