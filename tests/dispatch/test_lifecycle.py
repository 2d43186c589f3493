"""The whole life of each row (operation, message, attempt) for every scripted outcome."""

import pytest
from sqlalchemy import update

from opencomms.channels import SandboxChannel
from opencomms.store.codec import loads
from opencomms.store.db import Database
from opencomms.store.tables import messages
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


async def test_a_message_goes_queued_sent_delivered(db: Database) -> None:
    clock = FakeClock()
    sandbox = SandboxChannel(clock=clock)
    request = body("+14155550100", text="Hi {{ name }}!")
    request["to"][0]["variables"] = {"name": "Ada"}
    op = await send(db, request, now=clock.now)
    [row] = await message_rows(db, op)
    assert (row["status"], row["content"], row["attempt_count"]) == ("QUEUED", None, 0)
    assert await assert_operation_consistent(db, op) == "PROCESSING"

    async with dispatcher(db, clock, sandbox=sandbox) as worker:
        assert await drain(worker) == 1

    [row] = await message_rows(db, op)
    assert row["status"] == "DELIVERED"
    assert loads(row["content"]) == {"text": "Hi Ada!"}
    assert (row["attempt_count"], row["next_attempt_at"], row["lease_owner"]) == (1, None, None)
    assert (row["error_code"], row["channel"]) == (None, "RCS")  # RCS before SMS
    [attempt] = await attempt_rows(db, row["id"])
    assert attempt["status"] == "DELIVERED"
    assert attempt["sender"] == loads(row["sender"])
    assert attempt["sender"]["channel"] == "RCS" and attempt["sender"]["senderId"]
    assert attempt["sender"]["address"] == "opencomms_sandbox_agent"
    assert attempt["recipient"] == [{"address": "+14155550100", "channel": "PHONE"}]
    assert attempt["attempted_at"] == clock.now
    [delivery] = sandbox.inbox.for_message(row["id"])
    assert delivery.external_id == attempt["external_id"]
    assert delivery.content == {"text": "Hi Ada!"}
    assert await assert_operation_consistent(db, op) == "COMPLETED"


@pytest.mark.parametrize(
    ("address", "status", "code", "delivered"),
    [
        ("+15005550001", "FAILED", 21211, False),
        ("+15005550002", "FAILED", 21612, False),
        ("+15005550004", "FAILED", 21610, False),
        ("+15005550009", "FAILED", 21614, False),
        ("+15005550010", "UNDELIVERED", 30003, True),
        ("+15005550011", "UNDELIVERED", 30005, True),
        ("+15005550020", "READ", None, True),
    ],
)
async def test_scripted_outcomes_end_in_their_status(
    db: Database, address: str, status: str, code: int | None, delivered: bool
) -> None:
    clock = FakeClock()
    sandbox = SandboxChannel(clock=clock)
    sms_only = {"address": "+15005550006", "channel": "SMS"}  # one route: no fallback
    op = await send(db, body(address, **{"from": sms_only}), now=clock.now)
    async with dispatcher(db, clock, sandbox=sandbox) as worker:
        await drain(worker)
    [row] = await message_rows(db, op)
    assert (row["status"], row["error_code"], row["next_attempt_at"]) == (status, code, None)
    [attempt] = await attempt_rows(db, row["id"])
    assert (attempt["status"], attempt["error_code"]) == (status, code)
    assert bool(sandbox.inbox.for_message(row["id"])) == delivered
    assert (attempt["external_id"] is not None) == delivered
    assert await assert_operation_consistent(db, op) == "COMPLETED"


async def test_receipts_come_after_sent_and_survive_a_crash(db: Database) -> None:
    clock = FakeClock()
    op = await send(db, body("+15005550020", "+15005550010"), now=clock.now)
    # The first worker's sandbox would push receipts after a minute, but it dies first.
    first = SandboxChannel(delay=60.0, clock=clock)
    async with dispatcher(db, clock, sandbox=first, receipt_timeout=30.0) as worker:
        await drain(worker)
    rows = await message_rows(db, op)
    assert [r["status"] for r in rows] == ["SENT", "SENT"]
    assert await assert_operation_consistent(db, op) == "PROCESSING"

    # Another worker asks the channel once the receipt is overdue, and not before.
    second = SandboxChannel(delay=60.0, clock=clock)
    async with dispatcher(db, clock, sandbox=second, receipt_timeout=30.0) as worker:
        assert await worker.run_once() == 0
        clock.advance(61)
        await drain(worker)
        rows = await message_rows(db, op)
        assert [r["status"] for r in rows] == ["DELIVERED", "UNDELIVERED"]
        assert rows[0]["next_attempt_at"] is not None  # a READ may still come
        assert rows[1]["next_attempt_at"] is None
        clock.advance(61)
        await drain(worker)
    rows = await message_rows(db, op)
    assert [r["status"] for r in rows] == ["READ", "UNDELIVERED"]
    assert [r["next_attempt_at"] for r in rows] == [None, None]
    assert second.inbox.deliveries == []  # nothing was sent twice
    [attempt] = await attempt_rows(db, rows[0]["id"])
    assert attempt["status"] == "READ"
    assert await assert_operation_consistent(db, op) == "COMPLETED"


async def test_rendered_text_over_the_limit_fails_that_message_only(db: Database) -> None:
    clock = FakeClock()
    request = body("+14155550100", "+14155550101", text="{{ note }}")
    request["to"][0]["variables"] = {"note": "x" * 1601}
    request["to"][1]["variables"] = {"note": "short"}
    op = await send(db, request, now=clock.now)
    sandbox = SandboxChannel(clock=clock)
    async with dispatcher(db, clock, sandbox=sandbox) as worker:
        await drain(worker)
    long, short = await message_rows(db, op)
    assert (long["status"], long["error_code"], long["attempt_count"]) == ("FAILED", 21617, 0)
    assert await attempt_rows(db, long["id"]) == []
    assert short["status"] == "DELIVERED" and loads(short["content"]) == {"text": "short"}
    assert [d.message_id for d in sandbox.inbox.deliveries] == [short["id"]]
    assert await assert_operation_consistent(db, op) == "COMPLETED"


async def test_unaddressable_messages_are_never_claimed(db: Database) -> None:
    clock = FakeClock()
    request = body("+14155550100")
    request["to"].append(
        {
            "profileId": "mem_profile_01h9krwprkeee8fzqspvwy6nq8",
            "memoryStoreId": "mem_store_01h9krwprkeee8fzqspvwy6nq8",
        }
    )
    op = await send(db, request, now=clock.now)
    async with dispatcher(db, clock) as worker:
        assert await drain(worker) == 1
    addressed, profile = await message_rows(db, op)
    assert addressed["status"] == "DELIVERED"
    assert (profile["status"], profile["unaddressable"], profile["attempt_count"]) == (
        "FAILED",
        True,
        0,
    )
    assert await assert_operation_consistent(db, op) == "COMPLETED"


async def test_channel_modules_are_rendered_throughout(db: Database) -> None:
    clock = FakeClock()
    request = body("+14155550100")
    request["content"] = {"sms": {"text": "Code {{ code }}"}}
    request["to"][0]["variables"] = {"code": "42"}
    op = await send(db, request, now=clock.now)
    sandbox = SandboxChannel(clock=clock)
    async with dispatcher(db, clock, sandbox=sandbox) as worker:
        await drain(worker)
    [row] = await message_rows(db, op)
    assert loads(row["content"]) == {"sms": {"text": "Code 42"}}
    assert sandbox.inbox.deliveries[0].content == {"sms": {"text": "Code 42"}}


async def test_a_message_queued_before_plans_were_stored_still_goes(db: Database) -> None:
    """Rows accepted before migration 0003 have no plan: their one sender is used."""
    clock = FakeClock()
    op = await send(db, body("+14155550100"), now=clock.now)
    async with db.write() as conn:
        await conn.execute(update(messages).where(messages.c.operation_id == op).values(plan=None))
    async with dispatcher(db, clock) as worker:
        await drain(worker)
    [row] = await message_rows(db, op)
    assert row["status"] == "DELIVERED"
    [attempt] = await attempt_rows(db, row["id"])
    assert attempt["route"] == "sandbox"
