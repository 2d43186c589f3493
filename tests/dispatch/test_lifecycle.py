"""The whole life of each row: operation, message, attempt, for every scripted outcome."""

from opencomms.channels import SandboxChannel
from opencomms.store.codec import loads
from opencomms.store.db import Database
from tests.dispatch.helpers import (
    FakeClock,
    assert_operation_consistent,
    attempt_rows,
    body,
    dispatcher,
    drain,
    message_rows,
    operation_row,
    send,
)


async def test_a_message_goes_queued_sent_delivered(db: Database) -> None:
    clock = FakeClock()
    sandbox = SandboxChannel(clock=clock)
    request = body(text="Hi {{ name }}!")
    request["to"] = [{"address": "+14155550100", "channel": "PHONE", "variables": {"name": "Ada"}}]
    op = await send(db, request, now=clock.now)
    [row] = await message_rows(db, op)
    assert (row["status"], row["content"], row["attempt_count"]) == ("QUEUED", None, 0)
    assert await assert_operation_consistent(db, op) == "PROCESSING"

    async with dispatcher(db, clock, sandbox=sandbox) as worker:
        await drain(worker)

    [row] = await message_rows(db, op)
    assert row["status"] == "DELIVERED"
    assert loads(row["content"]) == {"text": "Hi Ada!"}
    assert (row["attempt_count"], row["next_attempt_at"], row["lease_owner"]) == (1, None, None)
    [attempt] = await attempt_rows(db, row["id"])
    assert attempt["status"] == "DELIVERED"
    assert attempt["sender"]["channel"] == "SMS"
    assert attempt["recipient"] == [{"address": "+14155550100", "channel": "PHONE"}]
    [delivery] = sandbox.inbox.for_message(row["id"])
    assert delivery.external_id == attempt["external_id"]
    assert delivery.content == {"text": "Hi Ada!"}
    assert await assert_operation_consistent(db, op) == "COMPLETED"
    assert (await operation_row(db, op))["status"] == "COMPLETED"
