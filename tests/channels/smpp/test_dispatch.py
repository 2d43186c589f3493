"""The Dispatcher against the real SMSC, on both databases: long texts settle on all their
parts' receipts, Seek finds them by any part, early receipts count, inbound is stored once."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from opencomms.channels.smpp import SmppChannel
from opencomms.clock import now_ms
from opencomms.dispatch import Dispatcher, WorkerConfig
from opencomms.store import reads
from opencomms.store import receipts as store_receipts
from opencomms.store.db import Database
from opencomms.store.receipts import ReceiptRow
from tests.channels.smsc.control import Smsc
from tests.dispatch.conftest import db, db_url, queue_pg_url
from tests.dispatch.helpers import ACCOUNT, attempt_rows, body, message_rows, send

__all__ = ["db", "db_url", "queue_pg_url"]

SMS = {"address": "+15005550006", "channel": "SMS"}
TO = "+14155550123"
GSM_LONG = "The quick brown fox jumps over the lazy dog. " * 8  # 360 septets: 3 parts of 153
UCS2_LONG = "Привет, мир! Как дела? " * 7  # 161 units: 3 parts of 67


def channel_for(smsc: Smsc, **options: Any) -> SmppChannel:
    settings: dict[str, Any] = {
        "host": smsc.host,
        "port": smsc.port,
        "system_id": "opencomms",
        "password": "secret",
        "reconnect_min": 0.05,
        "reconnect_max": 0.2,
        "connect_timeout": 3,
        "response_timeout": 3,
        **options,
    }
    return SmppChannel(name="smsc", **settings)


@pytest.fixture
async def worker(smsc: Smsc, db: Database) -> AsyncIterator[Dispatcher]:
    # The default SMS sender's plan names the route "sandbox": it is the SMSC here.
    config = WorkerConfig(worker_id="w-smpp", receipt_timeout=300)
    async with Dispatcher(db, {"sandbox": channel_for(smsc)}, config) as dispatcher:
        yield dispatcher


async def until(
    worker: Dispatcher, check: Callable[[], Awaitable[bool]], within: float = 10.0
) -> None:
    """Runs the worker (batches and pushed receipts) until `check` holds."""
    async with asyncio.timeout(within):
        while not await check():
            await worker.run_once()
            await asyncio.sleep(0.02)


async def status_of(db: Database, op: str) -> str:
    [row] = await message_rows(db, op)
    return str(row["status"])


async def part_ids(smsc: Smsc, count: int) -> list[str]:
    submits = [s for s in await smsc.submits() if s["destination"] == TO[1:]]
    assert len(submits) == count, submits
    return [s["id"] for s in sorted(submits, key=lambda s: s["part"])]


async def seeks(db: Database, identifiers: list[str]) -> set[str | None]:
    async with db.read() as conn:
        return {await reads.find_by_external_id(conn, ACCOUNT, i) for i in identifiers}


@pytest.mark.parametrize("text", [GSM_LONG, UCS2_LONG], ids=["gsm", "ucs2"])
@pytest.mark.parametrize("early", [False, True], ids=["after-resp", "before-resp"])
async def test_a_long_sms_is_delivered_once_every_part_is(
    smsc: Smsc, db: Database, worker: Dispatcher, text: str, early: bool
) -> None:
    # The middle part's receipt is held back by the SMSC until the test sends it.
    await smsc.configure(
        receiptStat={f"{TO[1:]}#2": ["NONE", 0]}, receipts="before" if early else "after"
    )
    op = await send(db, body(TO, text=text, **{"from": SMS}))
    await until(worker, lambda: smsc_count(smsc, "deliverAcked", 2))
    await until(worker, lambda: has_submits(smsc, 3))
    ids = await part_ids(smsc, 3)
    await worker.run_once()
    assert await status_of(db, op) == "SENT"  # two parts of three delivered: not yet
    [row] = await message_rows(db, op)
    assert await seeks(db, ids) == {row["id"]}  # Seek finds it by any part
    await smsc.receipt(ids[1], "DELIVRD")

    async def delivered() -> bool:
        return await status_of(db, op) == "DELIVERED"

    await until(worker, delivered)
    [attempt] = await attempt_rows(db, row["id"])
    assert (attempt["external_id"], attempt["status"]) == (ids[0], "DELIVERED")


@pytest.mark.parametrize("text", [GSM_LONG, UCS2_LONG], ids=["gsm", "ucs2"])
async def test_a_long_sms_is_undelivered_as_soon_as_one_part_fails(
    smsc: Smsc, db: Database, worker: Dispatcher, text: str
) -> None:
    # Part 2 fails (absent subscriber), part 3's receipt never comes.
    stats = {f"{TO[1:]}#2": ["UNDELIV", 27], f"{TO[1:]}#3": ["NONE", 0]}
    await smsc.configure(receiptStat=stats, receiptFormat="tlv")
    op = await send(db, body(TO, text=text, **{"from": SMS}))

    async def settled() -> bool:
        return await status_of(db, op) != "SENT" and await status_of(db, op) != "QUEUED"

    await until(worker, settled)
    [row] = await message_rows(db, op)
    assert (row["status"], row["error_code"]) == ("UNDELIVERED", 30003), row
    # A late DELIVRD for the last part changes nothing.
    ids = await part_ids(smsc, 3)
    await smsc.receipt(ids[2], "DELIVRD")
    await until(worker, lambda: smsc_count(smsc, "deliverAcked", 3))
    await worker.run_once()
    assert await status_of(db, op) == "UNDELIVERED"


async def smsc_count(smsc: Smsc, key: str, value: int) -> bool:
    return (await smsc.stats())[key] >= value


async def has_submits(smsc: Smsc, count: int) -> bool:
    return len(await smsc.submits()) >= count


async def test_a_receipt_kept_by_a_transaction_that_missed_its_attempt_is_swept_in(
    smsc: Smsc, db: Database, worker: Dispatcher
) -> None:
    # What READ COMMITTED can leave behind: a receipt kept as unmatched by a transaction that
    # ran while the send result naming its id was being recorded. The second look applies it.
    await smsc.configure(receiptStat={TO[1:]: ["NONE", 0]})
    op = await send(db, body(TO, text="Short", **{"from": SMS}))

    async def sent() -> bool:
        return await status_of(db, op) == "SENT"

    await until(worker, sent)
    [smsc_id] = await part_ids(smsc, 1)
    async with db.write() as conn:
        row = ReceiptRow(smsc_id, "DELIVERED", None, None, True)
        await store_receipts.keep_unmatched(conn, [row], now_ms())
    await worker.tracker.sweep([smsc_id])
    assert await status_of(db, op) == "DELIVERED"
