"""What the channel contract offers adapters beyond the sandbox: several ids per hand-off,
no receipt at all, receipts made durable before the adapter acknowledges them, inbound."""

import asyncio
from collections.abc import Sequence

from sqlalchemy import select

from opencomms.channels import (
    Handoff,
    InboundMessage,
    InboundSink,
    OutboundMessage,
    Receipt,
    ReceiptSink,
    SandboxChannel,
    SendResult,
)
from opencomms.dispatch import Dispatcher, WorkerConfig
from opencomms.store.codec import loads
from opencomms.store.db import Database
from opencomms.store.tables import messages
from tests.dispatch.helpers import ACCOUNT, FakeClock, attempt_rows, body, drain, message_rows, send


class ScriptedRoute:
    """A route answering what the test says: the SMPP and SMTP shapes of a result."""

    name = "scripted"

    def __init__(self, result: SendResult) -> None:
        self.result = result
        self.receipts: ReceiptSink | None = None

    async def open(self, receipts: ReceiptSink, inbound: InboundSink | None = None) -> None:
        self.receipts = receipts

    async def send(self, message: OutboundMessage) -> SendResult:
        return self.result

    async def query(self, handoffs: Sequence[Handoff]) -> list[Receipt]:
        return []

    async def aclose(self) -> None:
        pass


def on(db: Database, clock: FakeClock, channel: object) -> Dispatcher:
    config = WorkerConfig(worker_id="w-test")
    return Dispatcher(db, {"sandbox": channel}, config, clock=clock)  # type: ignore[dict-item]


SMS = {"address": "+15005550006", "channel": "SMS"}


async def test_a_long_sms_is_delivered_once_the_receipt_of_every_part_is_in(db: Database) -> None:
    clock = FakeClock()
    route = ScriptedRoute(SendResult("part-1", parts=("part-2", "part-3")))
    op = await send(db, body("+14155550100", **{"from": SMS}), now=clock.now)
    async with on(db, clock, route) as worker:
        await drain(worker)
        [row] = await message_rows(db, op)
        assert row["status"] == "SENT"
        assert route.receipts is not None
        stored = route.receipts(Receipt("part-3", "DELIVERED"))
        assert not stored.done()  # nothing is on disk yet
        await worker.apply_receipts()
        await asyncio.wait_for(stored, 1)  # the channel may acknowledge now
        assert (await message_rows(db, op))[0]["status"] == "SENT"  # parts 1 and 2 to come
        route.receipts(Receipt("part-1", "DELIVERED"))
        route.receipts(Receipt("part-2", "DELIVERED"))
        await worker.apply_receipts()
    [row] = await message_rows(db, op)
    assert row["status"] == "DELIVERED"
    [attempt] = await attempt_rows(db, row["id"])
    assert (attempt["external_id"], attempt["status"]) == ("part-1", "DELIVERED")


async def test_no_receipt_expected_means_delivered_at_once(db: Database) -> None:
    clock = FakeClock()
    route = ScriptedRoute(SendResult("250-ok", receipt_expected=False))
    op = await send(db, body("+14155550100", **{"from": SMS}), now=clock.now)
    async with on(db, clock, route) as worker:
        await drain(worker)
    [row] = await message_rows(db, op)
    assert (row["status"], row["next_attempt_at"]) == ("DELIVERED", None)


async def test_inbound_messages_are_stored_for_the_senders_account(db: Database) -> None:
    clock = FakeClock()
    sandbox = SandboxChannel(clock=clock)
    await send(db, body("+14155550100", **{"from": SMS}), now=clock.now)  # makes the account
    async with on(db, clock, sandbox):
        reply = InboundMessage("SMS", "+14155550100", "+15005550006", {"text": "STOP"})
        await sandbox.receive(reply)
        await sandbox.receive(InboundMessage("SMS", "+14155550100", "+19999999999", {"text": "?"}))
    async with db.read() as conn:
        rows = (await conn.execute(select(messages).where(messages.c.status == "INBOUND"))).all()
    [row] = rows
    assert row.account_sid == ACCOUNT
    assert loads(row.sender) == {"address": "+14155550100", "channel": "PHONE"}
    assert loads(row.recipient)["address"] == "+15005550006"
    assert loads(row.content) == {"text": "STOP"}
    assert row.next_attempt_at is None  # never claimed
