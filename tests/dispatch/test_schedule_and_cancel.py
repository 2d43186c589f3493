"""Scheduled sends go out at their time, also across restarts; a cancel stops them."""

from datetime import UTC, datetime, timedelta

from opencomms.channels import SandboxChannel
from opencomms.store.cancel import cancel_operation
from opencomms.store.db import Database, open_database
from tests.dispatch.helpers import (
    FakeClock,
    assert_operation_consistent,
    attempt_rows,
    body,
    dispatcher,
    drain,
    message_rows,
    send,
)


def in_an_hour(clock: FakeClock) -> tuple[str, int]:
    moment = datetime.fromtimestamp(clock.now // 1000 + 3600, UTC)
    return moment.isoformat().replace("+00:00", "Z"), int(moment.timestamp() * 1000)


def scheduled(clock: FakeClock, *addresses: str) -> tuple[dict[str, object], int]:
    text, at = in_an_hour(clock)
    return body(*addresses, schedule={"sendAt": [text]}), at


async def test_dispatched_at_send_at_and_not_before(db: Database) -> None:
    clock = FakeClock()
    request, send_at = scheduled(clock, "+14155550100")
    op = await send(db, request, now=clock.now)
    [row] = await message_rows(db, op)
    assert (row["status"], row["next_attempt_at"]) == ("SCHEDULED", send_at)
    assert await assert_operation_consistent(db, op) == "SCHEDULED"
    sandbox = SandboxChannel(clock=clock)
    async with dispatcher(db, clock, sandbox=sandbox) as worker:
        clock.now = send_at - 1
        assert await worker.run_once() == 0
        clock.now = send_at
        await drain(worker)
    [row] = await message_rows(db, op)
    [attempt] = await attempt_rows(db, row["id"])
    assert (row["status"], attempt["attempted_at"]) == ("DELIVERED", send_at)
    assert await assert_operation_consistent(db, op) == "COMPLETED"


async def test_schedule_survives_a_restart_of_every_process(db: Database, db_url: str) -> None:
    clock = FakeClock()
    request, send_at = scheduled(clock, "+14155550100", "+14155550101")
    op = await send(db, request, now=clock.now)
    async with dispatcher(db, clock) as worker:
        assert await worker.run_once() == 0
    await db.dispose()  # everything stops; nothing about the schedule lives in memory

    restarted = open_database(db_url)
    try:
        clock.now = send_at + 10
        async with dispatcher(restarted, clock) as worker:
            assert await drain(worker) == 2
        assert [r["status"] for r in await message_rows(restarted, op)] == ["DELIVERED"] * 2
        assert await assert_operation_consistent(restarted, op) == "COMPLETED"
    finally:
        await restarted.dispose()


async def test_cancel_before_send_at_means_never_sent(db: Database) -> None:
    clock = FakeClock()
    request, send_at = scheduled(clock, "+14155550100", "+14155550101")
    op = await send(db, request, now=clock.now)
    async with db.write() as conn:
        assert await cancel_operation(conn, op, clock.now) == 2
    sandbox = SandboxChannel(clock=clock)
    async with dispatcher(db, clock, sandbox=sandbox) as worker:
        clock.now = send_at + 1000
        assert await drain(worker) == 0
    assert [r["status"] for r in await message_rows(db, op)] == ["CANCELED"] * 2
    assert sandbox.inbox.deliveries == []
    assert await assert_operation_consistent(db, op) == "CANCELED"


async def test_cancel_after_claim_wins_over_the_hand_off(db: Database) -> None:
    clock = FakeClock()
    request, send_at = scheduled(clock, "+14155550100")
    op = await send(db, request, now=clock.now)
    clock.now = send_at
    sandbox = SandboxChannel(clock=clock)
    async with dispatcher(db, clock, sandbox=sandbox) as worker:
        batch = await worker.claim()
        assert len(batch) == 1
        async with db.write() as conn:
            assert await cancel_operation(conn, op, clock.now) == 1
        await worker.process(batch)  # its fenced pre-send write finds the token bumped
        assert await drain(worker) == 0
    [row] = await message_rows(db, op)
    assert (row["status"], row["attempt_count"]) == ("CANCELED", 0)
    assert await attempt_rows(db, row["id"]) == []
    assert sandbox.inbox.deliveries == []
    assert await assert_operation_consistent(db, op) == "CANCELED"


async def test_local_times_dispatch_each_recipient_at_its_own_instant(db: Database) -> None:
    clock = FakeClock()
    tomorrow = datetime.fromtimestamp(clock.now // 1000, UTC).date() + timedelta(days=1)
    local = f"{tomorrow.isoformat()}T09:00:00"  # no offset: each recipient's local time
    op = await send(
        db, body("+14155550100", "+442079460000", schedule={"sendAt": [local]}), now=clock.now
    )
    sf, london = await message_rows(db, op)
    assert london["send_at"] < sf["send_at"]
    async with dispatcher(db, clock) as worker:
        clock.now = london["send_at"]
        await drain(worker)
        statuses = [r["status"] for r in await message_rows(db, op)]
        assert statuses == ["SCHEDULED", "DELIVERED"]
        assert await assert_operation_consistent(db, op) == "PROCESSING"
        clock.now = sf["send_at"]
        await drain(worker)
    assert await assert_operation_consistent(db, op) == "COMPLETED"
