"""Receipts: forward only, for the current attempt, and kept when they come too early."""

import asyncio
from collections.abc import Sequence

from sqlalchemy import func, select

from opencomms.channels import (
    Handoff,
    InboundSink,
    OutboundMessage,
    Receipt,
    ReceiptSink,
    SandboxChannel,
    SendResult,
)
from opencomms.dispatch.receipts import fold
from opencomms.store.db import Database
from opencomms.store.receipts import ReceiptRow, ReceiptTarget
from opencomms.store.tables import receipts
from tests.dispatch.helpers import (
    FakeClock,
    GatedChannel,
    assert_operation_consistent,
    attempt_rows,
    body,
    dispatcher_on,
    drain,
    message_rows,
    send,
)


class ManualChannel:
    """Takes every message and sends receipts only when the test says so."""

    name = "manual"

    def __init__(self) -> None:
        self.sink: ReceiptSink | None = None
        self.sent: list[OutboundMessage] = []

    async def open(self, receipts: ReceiptSink, inbound: InboundSink | None = None) -> None:
        self.sink = receipts

    async def send(self, message: OutboundMessage) -> SendResult:
        self.sent.append(message)
        return SendResult(f"EXT-{message.message_id}-{message.attempt}")

    def push(
        self, status: str, attempt: int = 1, code: int | None = None, final: bool = True
    ) -> None:
        assert self.sink is not None
        message = self.sent[attempt - 1]
        external_id = f"EXT-{message.message_id}-{message.attempt}"
        self.sink(Receipt(external_id, status, code, "error" if code else None, final))

    async def query(self, handoffs: Sequence[Handoff]) -> list[Receipt]:
        return []

    async def aclose(self) -> None:
        self.sink = None


async def waiting_receipts(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(receipts))).scalar_one())


async def test_status_only_moves_forward(db: Database) -> None:
    clock = FakeClock()
    op = await send(db, body("+14155550100"), now=clock.now)
    channel = ManualChannel()
    async with dispatcher_on(db, clock, channel) as worker:
        await drain(worker)
        [row] = await message_rows(db, op)
        assert row["status"] == "SENT"
        channel.push("READ")
        channel.push("DELIVERED")  # late: READ already implies it
        await worker.apply_receipts()
        channel.push("UNDELIVERED", code=30003)
        await worker.apply_receipts()
    [row] = await message_rows(db, op)
    [attempt] = await attempt_rows(db, row["id"])
    assert (row["status"], attempt["status"], row["error_code"]) == ("READ", "READ", None)
    assert await assert_operation_consistent(db, op) == "COMPLETED"


async def test_delivered_then_undelivered_keeps_delivered(db: Database) -> None:
    clock = FakeClock()
    op = await send(db, body("+14155550100"), now=clock.now)
    channel = ManualChannel()
    async with dispatcher_on(db, clock, channel) as worker:
        await drain(worker)
        channel.push("DELIVERED")
        await worker.apply_receipts()
        channel.push("UNDELIVERED", code=30003)
        await worker.apply_receipts()
    [row] = await message_rows(db, op)
    assert (row["status"], row["error_code"], row["next_attempt_at"]) == ("DELIVERED", None, None)


async def test_a_receipt_before_its_send_result_waits_for_it(db: Database) -> None:
    clock = FakeClock()
    op = await send(db, body("+14155550100"), now=clock.now)
    gated = GatedChannel(SandboxChannel(clock=clock))
    async with dispatcher_on(db, clock, gated) as worker:
        sending = asyncio.create_task(worker.run_once())
        await asyncio.wait_for(gated.waiting.wait(), 10)
        # The DELIVERED receipt is in; the send result that names its id is not yet written.
        assert await worker.apply_receipts() == 1
        assert await waiting_receipts(db) == 1
        [row] = await message_rows(db, op)
        assert row["status"] == "QUEUED"
        gated.gate.set()
        await asyncio.wait_for(sending, 10)
    [row] = await message_rows(db, op)
    [attempt] = await attempt_rows(db, row["id"])
    assert (row["status"], attempt["status"]) == ("DELIVERED", "DELIVERED")
    assert await waiting_receipts(db) == 0
    assert await assert_operation_consistent(db, op) == "COMPLETED"


def test_a_receipt_for_an_earlier_attempt_moves_that_attempt_only() -> None:
    older = ReceiptTarget("EXT-1", "m", "op", 1, "SENT", is_current=False, message_status="SENT")
    rows = [ReceiptRow("EXT-1", "UNDELIVERED", 30003, "Unreachable", final=True)]
    plan = fold(rows, {"EXT-1": older}, now=0, recheck_ms=1000)
    assert [(a.number, a.status) for a in plan.attempts] == [(1, "UNDELIVERED")]
    assert plan.messages == []


def test_receipts_fold_in_order_and_keep_a_due_time_until_final() -> None:
    target = ReceiptTarget("EXT-1", "m", "op", 1, "SENT", is_current=True, message_status="SENT")
    delivered = ReceiptRow("EXT-1", "DELIVERED", None, None, final=False)
    read = ReceiptRow("EXT-1", "READ", None, None, final=True)
    [early] = fold([delivered], {"EXT-1": target}, now=0, recheck_ms=1000).messages
    assert (early.status, early.next_at) == ("DELIVERED", 1000)
    [late] = fold([delivered, read], {"EXT-1": target}, now=0, recheck_ms=1000).messages
    assert (late.status, late.expect, late.next_at) == ("READ", "SENT", None)


async def test_unknown_receipts_are_kept_then_pruned(db: Database) -> None:
    clock = FakeClock()
    channel = ManualChannel()
    async with dispatcher_on(db, clock, channel, unmatched_receipt_ttl=60) as worker:
        assert channel.sink is not None
        channel.sink(Receipt("EXT-nobody", "DELIVERED"))
        assert await worker.apply_receipts() == 1
        assert await waiting_receipts(db) == 1
        assert await worker.prune_receipts() == 0
        clock.advance(61)
        assert await worker.prune_receipts() == 1
    assert await waiting_receipts(db) == 0
