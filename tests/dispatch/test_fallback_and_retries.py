"""Fallback through the planned routes, retries with backoff, and giving up."""

from opencomms.channels import SandboxChannel
from opencomms.dispatch import RetryPolicy
from opencomms.dispatch.policy import GiveUp
from opencomms.store.db import Database
from tests.dispatch.helpers import (
    FakeClock,
    assert_operation_consistent,
    attempt_rows,
    body,
    dispatcher,
    drain,
    make_pool,
    message_rows,
    send,
)


async def test_pool_tries_rcs_then_sms(db: Database) -> None:
    clock = FakeClock()
    sandbox = SandboxChannel(clock=clock)
    pool = {"senderPoolId": await make_pool(db)}
    op = await send(db, body("+15005550030", **{"from": pool}), now=clock.now)
    [row] = await message_rows(db, op)
    assert row["channel"] == "RCS"  # the planned first route
    async with dispatcher(db, clock, sandbox=sandbox) as worker:
        await drain(worker)
    [row] = await message_rows(db, op)
    rcs, sms = await attempt_rows(db, row["id"])
    assert (rcs["sender"]["channel"], rcs["status"], rcs["error_code"]) == ("RCS", "FAILED", 61337)
    assert rcs["sender"]["senderPoolId"] == pool["senderPoolId"]
    assert (sms["sender"]["channel"], sms["status"], sms["error_code"]) == (
        "SMS",
        "DELIVERED",
        None,
    )
    assert (row["status"], row["channel"], row["route_index"]) == ("DELIVERED", "SMS", 1)
    assert [d.channel for d in sandbox.inbox.deliveries] == ["SMS"]
    assert await assert_operation_consistent(db, op) == "COMPLETED"


async def test_connected_addresses_are_tried_in_order(db: Database) -> None:
    clock = FakeClock()
    request = body()
    request["to"] = [
        {
            "addresses": [
                {"address": "+15005550001", "channel": "PHONE"},
                {"address": "+15005550004", "channel": "PHONE"},
                {"address": "+14155550100", "channel": "PHONE"},
            ]
        }
    ]
    op = await send(db, request, now=clock.now)
    async with dispatcher(db, clock) as worker:
        await drain(worker)
    [row] = await message_rows(db, op)
    attempts = await attempt_rows(db, row["id"])
    # Channel priority first (RCS before SMS), then the addresses in the order given.
    tried = [
        (a["channel"], a["recipient"][0]["address"], a["status"], a["error_code"]) for a in attempts
    ]
    assert tried == [
        ("RCS", "+15005550001", "FAILED", 21211),
        ("RCS", "+15005550004", "FAILED", 21610),
        ("RCS", "+14155550100", "DELIVERED", None),
    ]
    assert (row["status"], row["attempt_count"]) == ("DELIVERED", 3)


async def test_every_route_refusing_fails_with_the_last_error(db: Database) -> None:
    clock = FakeClock()
    pool = {"senderPoolId": await make_pool(db)}
    op = await send(db, body("+15005550004", **{"from": pool}), now=clock.now)
    async with dispatcher(db, clock) as worker:
        await drain(worker)
    [row] = await message_rows(db, op)
    assert [a["sender"]["channel"] for a in await attempt_rows(db, row["id"])] == ["RCS", "SMS"]
    assert (row["status"], row["error_code"], row["next_attempt_at"]) == ("FAILED", 21610, None)
    assert await assert_operation_consistent(db, op) == "COMPLETED"


async def test_transient_errors_retry_with_backoff_then_deliver(db: Database) -> None:
    clock = FakeClock()
    start = clock.now
    op = await send(db, body("+15005550040"), now=clock.now)
    async with dispatcher(db, clock, rand=1.0, backoff_base=1.0) as worker:
        await drain(worker)
        [row] = await message_rows(db, op)
        assert (row["status"], row["attempt_count"]) == ("QUEUED", 1)
        assert row["next_attempt_at"] == start + 1000  # base * 2^0, full jitter factor
        assert await assert_operation_consistent(db, op) == "PROCESSING"
        clock.advance(0.999)
        assert await worker.run_once() == 0  # not due yet
        clock.advance(0.001)
        await drain(worker)
        [row] = await message_rows(db, op)
        assert row["next_attempt_at"] == clock.now + 2000  # base * 2^1
        clock.advance(2)
        await drain(worker)
    [row] = await message_rows(db, op)
    attempts = await attempt_rows(db, row["id"])
    assert [(a["status"], a["error_code"]) for a in attempts] == [
        ("FAILED", 30017),
        ("FAILED", 30017),
        ("DELIVERED", None),
    ]
    assert row["status"] == "DELIVERED"
    assert await assert_operation_consistent(db, op) == "COMPLETED"


async def test_attempts_exhausted_fails_with_30001(db: Database) -> None:
    clock = FakeClock()
    op = await send(db, body("+15005550040"), now=clock.now)
    async with dispatcher(db, clock, max_attempts=2) as worker:
        await drain(worker)
        clock.advance(10)
        await drain(worker)
    [row] = await message_rows(db, op)
    assert (row["status"], row["error_code"], row["next_attempt_at"]) == ("FAILED", 30001, None)
    assert "30017" in row["error_message"]
    assert len(await attempt_rows(db, row["id"])) == 2
    assert await assert_operation_consistent(db, op) == "COMPLETED"


async def test_validity_expiry_fails_with_30036(db: Database) -> None:
    clock = FakeClock()
    op = await send(db, body("+15005550040"), now=clock.now)
    # The first retry would start after the 60-second validity period: give up now.
    async with dispatcher(db, clock, validity_seconds=60, backoff_base=100) as worker:
        await drain(worker)
    [row] = await message_rows(db, op)
    assert (row["status"], row["error_code"]) == ("FAILED", 30036)
    assert len(await attempt_rows(db, row["id"])) == 1
    assert await assert_operation_consistent(db, op) == "COMPLETED"


async def test_a_message_claimed_after_its_validity_fails_unsent(db: Database) -> None:
    clock = FakeClock()
    op = await send(db, body("+14155550100"), now=clock.now)
    clock.advance(61)
    sandbox = SandboxChannel(clock=clock)
    async with dispatcher(db, clock, sandbox=sandbox, validity_seconds=60) as worker:
        await drain(worker)
    [row] = await message_rows(db, op)
    assert (row["status"], row["error_code"], row["attempt_count"]) == ("FAILED", 30036, 0)
    assert sandbox.inbox.deliveries == []
    assert await assert_operation_consistent(db, op) == "COMPLETED"


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(backoff_base_ms=1000, backoff_max_ms=5000)
    assert [policy.backoff_ms(n, 1.0) for n in range(1, 6)] == [1000, 2000, 4000, 5000, 5000]
    assert [policy.backoff_ms(n, 0.0) for n in range(1, 4)] == [500, 1000, 2000]
    assert policy.backoff_ms(10_000, 1.0) == 5000


def test_policy_gives_up_on_attempts_then_validity() -> None:
    policy = RetryPolicy(max_attempts=3, validity_ms=10_000, backoff_base_ms=1000)
    assert policy.retry_at(1, valid_from=0, now=0, rand=1.0) == 1000
    assert policy.retry_at(3, valid_from=0, now=0, rand=1.0) == GiveUp(
        30001, "Delivery failed after 3 attempts"
    )
    late = policy.retry_at(1, valid_from=0, now=9_500, rand=1.0)
    assert isinstance(late, GiveUp) and late.code == 30036
    assert policy.refuse(0, valid_from=0, now=10_000) is not None
    assert policy.refuse(2, valid_from=0, now=9_999) is None
